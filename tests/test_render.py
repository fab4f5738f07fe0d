"""coopchain_render through a real Nornir on the repository's sample inventory (TOWER-017)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from needs import needs_vtysh
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.task import AggregatedResult
from nornir_utils.plugins.functions import print_result

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.content import hash_text
from nornir_coopchain.plugins.results import RenderedConfig
from nornir_coopchain.plugins.tasks import coopchain_render

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "inventory"
TEMPLATES = ROOT / "templates"
FRR_HOSTS = ("site17-r1", "site17-r2", "site17-r3")
EOS_HOST = "site17-r4"
OPERATORS = {"OPERATOR-A": 1, "OPERATOR-B": 2, "OPERATOR-C": 3}


def make_nornir() -> Nornir:
    return InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 4}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(INVENTORY / "hosts.yaml"),
                "group_file": str(INVENTORY / "groups.yaml"),
                "defaults_file": str(INVENTORY / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )


def render_all(nr: Nornir) -> AggregatedResult:
    return nr.run(task=coopchain_render, path=TEMPLATES)


def rendered(results: AggregatedResult, host: str) -> RenderedConfig:
    result = results[host][0].result
    assert isinstance(result, RenderedConfig)
    return result


@pytest.fixture(scope="module")
def results() -> AggregatedResult:
    results = render_all(make_nornir())
    assert not results.failed, {h: r[0].exception for h, r in results.failed_hosts.items()}
    return results


def test_renders_every_host_with_its_platform(results: AggregatedResult) -> None:
    assert sorted(results) == [*FRR_HOSTS, EOS_HOST]
    for host in results:
        config = rendered(results, host)
        platform = "eos" if host == EOS_HOST else "frr"
        assert (config.host, config.platform) == (host, platform)
        assert config.template == f"{platform}/site_router.j2"
        assert config.config_hash == hash_text(config.config)
        assert config.config.endswith("\n")
        assert results[host][0].changed is False


@pytest.mark.parametrize("host", FRR_HOSTS)
def test_frr_has_every_operator_stanza(results: AggregatedResult, host: str) -> None:
    n = int(host[-1])
    lines = rendered(results, host).config.splitlines()
    assert f"hostname {host}" in lines
    assert f" bgp router-id 192.0.2.{170 + n}" in lines
    for op, x in OPERATORS.items():
        index = lines.index(f"interface eth0.{100 + x}")
        assert lines[index + 1].startswith(f" description {op} backhaul to PE AS6460{x}")
        assert lines[index + 2] == f" ip address 198.19.{x}.{4 * n - 3}/30"
        assert f"interface eth1.{200 + x}" in lines
        assert f" neighbor {op} remote-as 6460{x}" in lines
        assert f" neighbor 198.19.{x}.{4 * n - 2} peer-group {op}" in lines
        assert f"  neighbor {op} route-map RM-{op}-IN in" in lines
        assert f"  neighbor {op} route-map RM-{op}-OUT out" in lines
        assert f"route-map RM-{op}-OUT permit 10" in lines
        assert f" match ip address prefix-list PL-{op}-OUT" in lines
        ran = f"198.18.{10 * x + n}.0/24"
        assert f"ip prefix-list PL-{op}-OUT seq 10 permit {ran}" in lines
        assert f"ip route {ran} 198.19.{10 + x}.{4 * n - 2} eth1.{200 + x}" in lines
        assert f"  network {ran}" in lines
    # FRR has no NTP client or remote syslog: only its own logging is configured.
    assert "log syslog informational" in lines
    assert not [line for line in lines if line.startswith(("ntp", "logging"))]


def test_eos_has_every_operator_stanza(results: AggregatedResult) -> None:
    lines = rendered(results, EOS_HOST).config.splitlines()
    for op, x in OPERATORS.items():
        index = lines.index(f"interface Ethernet1.{100 + x}")
        assert lines[index + 1].startswith(f"   description {op} backhaul")
        assert lines[index + 2] == f"   encapsulation dot1q vlan {100 + x}"
        assert lines[index + 3] == f"   ip address 198.19.{x}.13/30"
        assert f"   neighbor {op} peer group" in lines
        assert f"   neighbor 198.19.{x}.14 peer group {op}" in lines
        assert f"   neighbor {op} route-map RM-{op}-IN in" in lines
        assert f"   neighbor {op} maximum-routes 50" in lines
        assert f"   match ip address prefix-list PL-{op}-IN" in lines
        ran = f"198.18.{10 * x + 4}.0/24"
        assert f"ip route {ran} Ethernet2.{200 + x} 198.19.{10 + x}.14 name {op}-RAN" in lines
    assert "ntp server 198.51.100.10 prefer iburst" in lines
    assert "logging host 198.51.100.20" in lines
    assert "ip routing" in lines
    assert lines[-1] == "end"


def test_tenant_patterns_attribute_each_line_to_at_most_one_operator(
    results: AggregatedResult,
) -> None:
    nr = make_nornir()
    for host in results:
        patterns = nr.inventory.hosts[host]["coopchain"]["tenants_patterns"]
        assert set(patterns) == set(OPERATORS)
        compiled = {op: [re.compile(p) for p in regexes] for op, regexes in patterns.items()}
        owners: dict[str, list[str]] = {op: [] for op in OPERATORS}
        for line in rendered(results, host).config.splitlines():
            matched = [op for op, res in compiled.items() if any(r.search(line) for r in res)]
            assert len(matched) <= 1, (host, line, matched)
            for op in OPERATORS:
                if op in line:
                    assert matched == [op], (host, line)
            if matched:
                owners[matched[0]].append(line.strip())
        x = OPERATORS["OPERATOR-B"]
        assert any(line.startswith(f"ip address 198.19.{x}.") for line in owners["OPERATOR-B"])
        assert any(line.startswith("network 198.18.2") for line in owners["OPERATOR-B"])


def test_hashes_are_stable_across_runs(results: AggregatedResult) -> None:
    again = render_all(make_nornir())
    for host in results:
        assert rendered(again, host) == rendered(results, host)


def test_missing_variable_fails_that_host_only() -> None:
    nr = make_nornir()
    nr.inventory.hosts["site17-r2"].data.pop("router_id")
    results = render_all(nr)
    assert sorted(results.failed_hosts) == ["site17-r2"]
    error = results["site17-r2"][0].exception
    assert isinstance(error, ConfigError)
    assert error.field == "site17-r2"
    assert error.source == str(TEMPLATES / "frr" / "site_router.j2")
    assert "'router_id' is undefined" in str(error)
    assert "site17-r2" in str(error)
    assert "frr/site_router.j2 line " in str(error)
    for host in ("site17-r1", "site17-r3", EOS_HOST):
        assert not results[host].failed


def test_missing_variable_inside_an_imported_macro_names_the_macro_file() -> None:
    nr = make_nornir()
    nr.inventory.hosts[EOS_HOST].data["tenant_links"]["OPERATOR-C"]["ran"].pop("routes")
    results = nr.run(task=coopchain_render, path=TEMPLATES)
    error = results[EOS_HOST][0].exception
    assert isinstance(error, ConfigError)
    assert "routes" in str(error)
    assert "common/naming.j2 line " in str(error)


def test_missing_template_is_a_config_error() -> None:
    nr = make_nornir().filter(name=EOS_HOST)
    results = nr.run(task=coopchain_render, template="nope.j2", path=TEMPLATES)
    error = results[EOS_HOST][0].exception
    assert isinstance(error, ConfigError)
    assert error.source == str(TEMPLATES / "nope.j2")
    assert "nope.j2 not found (nor under eos/)" in str(error)


def test_a_template_is_a_path_under_the_templates_directory(tmp_path: Path) -> None:
    """As nornir_jinja2's template_file: no platform folder needed; a rendered template's
    path, as a proposal pins it, renders the same template again."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    (templates / "plain.j2").write_text("hostname {{ host.name }}\n")
    nr = make_nornir().filter(name="site17-r1")
    plain = rendered(
        nr.run(task=coopchain_render, template="plain.j2", path=templates), "site17-r1"
    )
    assert (plain.template, plain.config) == ("plain.j2", "hostname site17-r1\n")
    convention = rendered(nr.run(task=coopchain_render, path=templates), "site17-r1")
    assert convention.template == "frr/site_router.j2"
    pinned = nr.run(task=coopchain_render, template=convention.template, path=templates)
    assert rendered(pinned, "site17-r1") == convention


def test_kwargs_override_host_data() -> None:
    nr = make_nornir().filter(name="site17-r1")
    results = nr.run(task=coopchain_render, path=TEMPLATES, asn=65099)
    assert "router bgp 65099" in rendered(results, "site17-r1").config.splitlines()


def test_print_result(results: AggregatedResult, capsys: pytest.CaptureFixture[str]) -> None:
    print_result(results)
    out = capsys.readouterr().out
    for host in results:
        assert host in out
    assert "coopchain_render" in out
    assert "PL-OPERATOR-C-IN" in out


@pytest.mark.lab
@pytest.mark.parametrize("host", FRR_HOSTS)
def test_frr_render_parses_with_vtysh_dryrun(
    results: AggregatedResult, host: str, tmp_path: Path
) -> None:
    vtysh = needs_vtysh()
    conf = tmp_path / f"{host}.conf"
    conf.write_text(rendered(results, host).config)
    done = subprocess.run(
        [vtysh, "--dryrun", "-f", str(conf)], capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Unknown command" not in output, output


def test_an_edited_template_renders_anew_in_the_same_process(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    nr = make_nornir().filter(name="site17-r1")
    first = rendered(nr.run(task=coopchain_render, path=templates), "site17-r1")
    template = templates / "frr" / "site_router.j2"
    template.write_text(template.read_text() + "! edited\n")
    # the cached environment notices the edit even within the file system's time granularity
    os.utime(template, ns=(template.stat().st_atime_ns, template.stat().st_mtime_ns + 10**9))
    second = rendered(nr.run(task=coopchain_render, path=templates), "site17-r1")
    assert second.config == first.config + "! edited\n"
    assert second.config_hash != first.config_hash
