"""The CLI reads Nornir's own configuration: an inventory folder or ``-c config.yaml`` with any
inventory plugin; a malformed inventory file is bad input naming the file and line."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from test_cli import ROOT, A, B, C, run, run_json

from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.cli import EXIT_BAD_INPUT
from nornir_coopchain.demo import deploy_with_dev_keys

if TYPE_CHECKING:
    from nornir_coopchain.chain.devchain import AnvilProcess


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample inventory, with a chain URL nothing answers (no chain is asked here)."""
    shutil.copytree(ROOT / "inventory", tmp_path / "inventory")
    defaults = tmp_path / "inventory" / "defaults.yaml"
    data = yaml.safe_load(defaults.read_text())
    data["connection_options"]["coopchain"]["extras"]["chain_url"] = "http://127.0.0.1:9"
    defaults.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _replace(path: Path, old: str, new: str) -> int:
    """Edit a file; the 1-based line of the edit."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def _bad_input(*args: str) -> str:
    result = run("status", *args, code=EXIT_BAD_INPUT)
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def test_groups_given_as_a_string_names_file_line_and_host(workdir: Path) -> None:
    hosts = workdir / "inventory" / "hosts.yaml"
    line = _replace(hosts, "groups: [site17, frr]", "groups: site17")
    message = _bad_input()
    assert f"inventory/hosts.yaml:{line}: site17-r1.groups: must be a list of group names" in (
        message
    )


def test_hosts_file_that_is_not_yaml_names_file_and_line(workdir: Path) -> None:
    hosts = workdir / "inventory" / "hosts.yaml"
    line = _replace(hosts, "  platform: coopchain_sim", "  platform: [coopchain_sim")
    message = _bad_input()
    assert "ConfigError" in message
    assert "inventory/hosts.yaml:" in message
    assert "not valid YAML" in message
    reported = int(message.split("inventory/hosts.yaml:")[1].split(":")[0])
    assert line <= reported <= line + 2  # YAML reports where it noticed


def test_a_group_that_is_not_a_mapping_names_groups_file_and_line(workdir: Path) -> None:
    groups = workdir / "inventory" / "groups.yaml"
    groups.write_text("frr:\n  platform: coopchain_sim\neos:\n  - not a mapping\n")
    message = _bad_input()
    assert "inventory/groups.yaml:4: eos: must be a mapping" in message


def test_a_nornir_config_file_that_is_not_yaml_names_it(workdir: Path) -> None:
    (workdir / "config.yaml").write_text("inventory:\n  plugin: SimpleInventory\n  options: [\n")
    message = _bad_input("-c", "config.yaml")
    assert "config.yaml:4: not valid YAML" in message


def test_a_config_file_checks_the_simple_inventory_files_it_names(workdir: Path) -> None:
    """SimpleInventory with other file names (.yml), through --config."""
    renamed = workdir / "site"
    renamed.mkdir()
    for kind in ("hosts", "groups", "defaults"):
        shutil.copy(workdir / "inventory" / f"{kind}.yaml", renamed / f"{kind}.yml")
    config = {
        "inventory": {
            "plugin": "SimpleInventory",
            "options": {f"{k[:-1]}_file": f"site/{k}.yml" for k in ("hosts", "groups")}
            | {"defaults_file": "site/defaults.yml"},
        }
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    line = _replace(renamed / "hosts.yml", "groups: [site17, eos]", "groups: eos")
    message = _bad_input("--config", "config.yaml")
    assert f"site/hosts.yml:{line}: site17-r4.groups: must be a list of group names" in message


# ---------------------------------------------------------------- another inventory plugin


ANSIBLE_HOSTS = """\
all:
  vars:
    platform: coopchain_sim
    connection_options:
      napalm:
        extras: {{optional_args: {{state_dir: devices}}}}
      coopchain:
        extras:
          chain_url: "{url}"
          contract: "{contract}"
          state_dir: state
          resource_set: TOWER-017
  children:
    edge:
      hosts:
        edge-1:
        edge-2:
"""

NORNIR_CONFIG = """\
inventory:
  plugin: AnsibleInventory
  options:
    hostsfile: ansible/hosts.yaml
logging:
  log_file: nornir.log
  level: DEBUG
"""


@pytest.mark.anvil
def test_an_ansible_inventory_through_config_yaml_proposes_shows_and_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_anvil: AnvilProcess
) -> None:
    """nornir-ansible's AnsibleInventory: nothing of ours in its files but the coopchain
    connection options; templates as nornir_jinja2 has them (no platform folder); the
    proposal pins the template, so show --rerender and apply need no template flag."""
    with ChainClient.connect(own_anvil.url, receipt_timeout=10) as client:
        contract = deploy_with_dev_keys(client, ROOT / "inventory").address
    (tmp_path / "ansible").mkdir()
    hosts = ANSIBLE_HOSTS.format(url=own_anvil.url, contract=contract)
    (tmp_path / "ansible" / "hosts.yaml").write_text(hosts)
    (tmp_path / "config.yaml").write_text(NORNIR_CONFIG)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "edge.j2").write_text("hostname {{ host.name }}\n")
    monkeypatch.chdir(tmp_path)
    config = ("-c", "config.yaml")

    proposed = run_json(
        "propose", "--title", "Edge names", "--template", "edge.j2", "--yes", *config, *A
    )
    pid = str(proposed["proposal_id"])
    assert [device["host"] for device in proposed["devices"]] == ["edge-1", "edge-2"]
    assert all("+hostname edge-" in device["diff"] for device in proposed["devices"])
    run_json("vote", pid, "approve", *config, *B)
    assert run_json("vote", pid, "approve", *config, *C)["state"] == "Approved"

    shown = run_json("show", pid, "--rerender", *config)
    assert all(device["rerender"]["match"] for device in shown["devices"])
    applied = run_json("apply", pid, "--wait", "5", *config, *A)
    assert applied["state"] == "Verified"
    assert "nornir.core" in (tmp_path / "nornir.log").read_text()  # Nornir's own logging
