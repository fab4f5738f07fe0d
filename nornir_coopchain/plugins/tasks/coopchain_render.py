"""The ``coopchain_render`` task: render a host's candidate configuration from its template."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
from nornir.core.task import Result, Task

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.content import hash_text
from nornir_coopchain.plugins.results import RenderedConfig

__all__ = ["coopchain_render"]


def coopchain_render(
    task: Task, template: str | None = None, path: str | Path = "templates", **kwargs: Any
) -> Result:
    """Render the template ``<path>/<template>`` for the host with jinja2, as nornir_jinja2's
    ``template_file`` does; by convention, a template that is not there is looked for in the
    host's template platform folder, ``<path>/<template platform>/<template>``.

    The template platform is the host's ``template_platform`` (inherited from its groups or
    the defaults like any host data), else its ``platform``. The template sees ``host`` (the
    Nornir host), every key of the host's data merged with its groups' and the defaults'
    and ``kwargs``. Undefined variables are errors (``StrictUndefined``); blocks are
    trimmed (``trim_blocks``, ``lstrip_blocks``) and the trailing newline is kept. The
    loader is rooted at ``path``, so templates can ``{% import "common/..." %}``.

    Arguments:
        template: the template's path under ``path`` (or under its platform folder);
            defaults to the host's ``template`` data.
        path: the templates directory.
        **kwargs: more variables for the template (they override host data).

    Returns:
        Result object with the following attributes set:
          * result (``RenderedConfig``): the host, template platform, template (the path
            relative to ``path`` that was rendered: what a proposal pins), the config and
            its ``hash_text``
          * changed (``bool``): always False (nothing is sent to the device)

    Raises:
        ConfigError: when the host has no template, the template is missing (in both
            places), or it uses an undefined variable; ``source`` is the template file,
            ``field`` the host, and the message names the variable and template line.
    """
    host = task.host
    platform = str(host.get("template_platform") or host.platform or "")
    name = template or host.get("template")
    if not name:
        raise ConfigError("no template given and no 'template' in host data", field=host.name)
    root = Path(path)
    relative = str(name)
    if not (root / relative).is_file() and platform and (root / platform / relative).is_file():
        relative = f"{platform}/{relative}"
    source = str(root / relative)
    env = _environment(str(root.resolve()))
    variables = {**dict(host.items()), "host": host, **kwargs}
    try:
        config = env.get_template(relative).render(**variables)
    except TemplateNotFound as exc:
        where = f" (nor under {platform}/)" if platform else ""
        raise ConfigError(
            f"template {exc.name} not found{where}", source=source, field=host.name
        ) from exc
    except UndefinedError as exc:
        where = _template_line(exc.__traceback__, root)
        raise ConfigError(
            f"undefined variable: {exc}{where}", source=source, field=host.name
        ) from exc
    rendered = RenderedConfig(
        host=host.name,
        platform=platform,
        template=relative,
        config=config,
        config_hash=hash_text(config),
    )
    return Result(host=host, result=rendered, changed=False)


@lru_cache(maxsize=16)
def _environment(root: str) -> Environment:
    """One jinja2 environment per templates directory, so each template compiles once.

    Its loader still notices edited templates (``auto_reload`` compares modification times).
    """
    return Environment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _template_line(tb: TracebackType | None, root: Path) -> str:
    """`` (at <template> line N)`` for the innermost template frame of a traceback."""
    found = ""
    resolved = root.resolve()
    while tb is not None:
        filename = Path(tb.tb_frame.f_code.co_filename)
        if resolved in filename.resolve().parents:
            shown = filename.resolve().relative_to(resolved).as_posix()
            found = f" (at {shown} line {tb.tb_lineno})"
        tb = tb.tb_next
    return found
