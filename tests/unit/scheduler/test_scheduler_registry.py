"""The plugin registry: in-tree plugins loaded lazily, third-party plugins from the entry-point
group ``pybernetes.scheduler.plugins`` (the example package under
tests/fixtures/scheduler_plugin_example, by hand-built EntryPoints and by a real install into a
temporary directory), and the errors for unknown, clashing and broken plugins."""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pybernetes.scheduler import registry as regmod
from pybernetes.scheduler.config import API_VERSION, KIND, ConfigError, parse_config
from pybernetes.scheduler.framework import CycleState, Plugin
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.registry import (
    ENTRY_POINT_GROUP,
    IN_TREE,
    PluginLoadError,
    Registry,
    RegistryError,
    UnknownPluginError,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "scheduler_plugin_example"
EXAMPLE_VALUE = "pyb_example_plugin:NodeNameLength"


def ep(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


class NotAPlugin:
    name = "NotAPlugin"


class Misnamed(Plugin):
    name = "SomethingElse"


@pytest.fixture
def example_on_path(monkeypatch):
    """The example package importable from its source directory (not installed)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield
    sys.modules.pop("pyb_example_plugin", None)


# -- in-tree --------------------------------------------------------------------------------------


def test_in_tree_references_follow_the_module_convention():
    assert len(IN_TREE) == 17
    for name, value in IN_TREE.items():
        assert value == f"pybernetes.scheduler.plugins.{name.lower()}:{name}"


def test_load_an_in_tree_plugin_lazily_and_cache_it():
    sys.modules.pop("pybernetes.scheduler.plugins.defaultbinder", None)
    reg = Registry(entry_points=[])
    assert "pybernetes.scheduler.plugins.defaultbinder" not in sys.modules
    cls = reg.load("DefaultBinder")
    assert cls.name == "DefaultBinder" and issubclass(cls, Plugin)
    assert reg.load("DefaultBinder") is cls
    assert "DefaultBinder" in reg and reg.is_in_tree("DefaultBinder")


def test_unknown_plugin_error_names_it_and_the_known_ones():
    reg = Registry(entry_points=[ep("NodeNameLength", EXAMPLE_VALUE)])
    with pytest.raises(UnknownPluginError) as info:
        reg.load("NodeFoo")
    message = str(info.value)
    assert message.startswith("unknown scheduler plugin 'NodeFoo'; known plugins: ")
    assert "DefaultBinder" in message and "NodeNameLength" in message
    assert info.value.name == "NodeFoo"
    assert isinstance(info.value, LookupError)


def test_module_level_load_uses_the_default_registry(monkeypatch):
    monkeypatch.setattr(regmod, "_default", None)
    assert regmod.load("DefaultBinder").name == "DefaultBinder"
    assert regmod.default_registry() is regmod.default_registry()
    regmod.reset_default_registry()
    assert regmod._default is None


# -- entry points ---------------------------------------------------------------------------------


def test_entry_point_plugin_loads(example_on_path):
    reg = Registry(entry_points=[ep("NodeNameLength", EXAMPLE_VALUE)])
    assert reg.names()[-1] == "NodeNameLength" and not reg.is_in_tree("NodeNameLength")
    cls = reg.load("NodeNameLength")
    assert cls.name == "NodeNameLength" and issubclass(cls, Plugin)


def test_same_entry_point_seen_twice_is_fine():
    reg = Registry(entry_points=[ep("NodeNameLength", EXAMPLE_VALUE), ep("NodeNameLength", EXAMPLE_VALUE)])
    assert reg.names().count("NodeNameLength") == 1


def test_clash_with_an_in_tree_name_is_an_error():
    with pytest.raises(RegistryError) as info:
        Registry(entry_points=[ep("NodeName", "evil:NodeName")])
    assert str(info.value) == (
        "entry points of group 'pybernetes.scheduler.plugins': third-party plugin 'NodeName' (evil:NodeName) "
        "clashes with the in-tree plugin of that name (pybernetes.scheduler.plugins.nodename:NodeName)")


def test_two_distributions_registering_one_name_is_an_error():
    with pytest.raises(RegistryError, match="third-party plugin 'Foo' is registered twice: a:Foo and b:Foo"):
        Registry(entry_points=[ep("Foo", "a:Foo"), ep("Foo", "b:Foo")])


@pytest.mark.parametrize(("value", "message"), [
    ("no_such_module_xyz:Foo", "scheduler plugin 'Foo' (entry point pybernetes.scheduler.plugins, "
                               "no_such_module_xyz:Foo) cannot be loaded: ModuleNotFoundError"),
    (f"{__name__}:Missing", "cannot be loaded: AttributeError"),
    (f"{__name__}:NotAPlugin", "is not a subclass of pybernetes.scheduler.framework.Plugin"),
    (f"{__name__}:Misnamed", "names itself 'SomethingElse'; the class's name must equal its registered name"),
    ("nocolon", "plugin reference 'nocolon' is not of the form 'module:Class'"),
])
def test_broken_entry_points(value, message):
    reg = Registry(entry_points=[ep("Foo", value)])
    with pytest.raises(PluginLoadError) as info:
        reg.load("Foo")
    assert message in str(info.value)


def test_config_reports_a_broken_plugin_naming_it():
    reg = Registry(entry_points=[ep("Foo", "no_such_module_xyz:Foo")])
    doc = {"apiVersion": API_VERSION, "kind": KIND,
           "profiles": [{"plugins": {"filter": {"enabled": [{"name": "Foo"}]}}}]}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, reg)
    assert any(p.startswith("profiles[0].plugins.filter.enabled[0]: scheduler plugin 'Foo'")
               for p in info.value.problems)


# -- the example out-of-tree plugin ---------------------------------------------------------------


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def _config_with_example(reg: Registry):
    doc = {"apiVersion": API_VERSION, "kind": KIND, "profiles": [{
        "plugins": {"multiPoint": {"disabled": [{"name": "*"}], "enabled": [
            {"name": "PrioritySort"}, {"name": "DefaultBinder"}, {"name": "NodeNameLength", "weight": 5}]}},
        "pluginConfig": [{"name": "NodeNameLength", "args": {"rejectPrefixes": ["spot-"], "maxLength": 10}}],
    }]}
    return parse_config(doc, reg)


def _exercise(cfg) -> None:
    profile = cfg.profiles[0]
    assert profile.enabled("filter") == ["NodeNameLength"]
    assert profile.points["score"] == [("NodeNameLength", 5)]
    args = profile.plugin_args["NodeNameLength"]
    assert args == {"rejectPrefixes": ["spot-"], "maxLength": 10}
    plugin = profile.plugin_classes["NodeNameLength"](args, None)
    state = CycleState()
    verdicts = {n: plugin.filter(state, POD, node_info_of(node(n), [])) for n in ("a", "spot-1", "abcdefghijk", "bb")}
    assert verdicts["a"].is_success() and verdicts["bb"].is_success()
    assert verdicts["spot-1"].reasons == ("node(s) had a name with a rejected prefix",)
    assert verdicts["spot-1"].code.name == "UNSCHEDULABLE_AND_UNRESOLVABLE"
    assert verdicts["abcdefghijk"].reasons == ("node(s) had a name longer than the allowed length",)
    scores = {n: plugin.score(state, POD, node_info_of(node(n), []))[0] for n in ("a", "bbb", "ccccc")}
    assert scores == {"a": 1, "bbb": 3, "ccccc": 5}
    assert plugin.normalize_score(state, POD, scores).is_success()
    assert scores == {"a": 100, "bbb": 50, "ccccc": 0}


def test_example_plugin_through_hand_built_entry_points(example_on_path):
    _exercise(_config_with_example(Registry(entry_points=[ep("NodeNameLength", EXAMPLE_VALUE)])))


def test_example_plugin_bad_args_fail_the_config(example_on_path):
    reg = Registry(entry_points=[ep("NodeNameLength", EXAMPLE_VALUE)])
    doc = {"apiVersion": API_VERSION, "kind": KIND, "profiles": [{
        "plugins": {"multiPoint": {"enabled": [{"name": "NodeNameLength"}]}},
        "pluginConfig": [{"name": "NodeNameLength", "args": {"maxLength": 0, "colour": "red"}}]}]}
    with pytest.raises(ConfigError) as info:
        parse_config(doc, reg)
    problems = [p for p in info.value.problems if "NodeNameLength" in p]
    assert problems == [
        "profiles[0].pluginConfig[0].args: plugin 'NodeNameLength': maxLength: Invalid value: 0: "
        "must be a positive integer",
        "profiles[0].pluginConfig[0].args: plugin 'NodeNameLength': unknown field(s): colour"]


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    """The example package installed into a temporary directory put on sys.path: its
    metadata (an .egg-info with entry_points.txt) generated by setuptools from the package's
    own pyproject.toml (offline; the project venv has no ``wheel`` for a pip build), next to a
    copy of the package, so importlib.metadata discovers the entry point as for any installed
    distribution.  Nothing is installed into the project's venv."""
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE, source)
    target = tmp_path / "site"
    target.mkdir()
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()",
                           "egg_info", "--egg-base", str(target)],
                          cwd=source, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"generating the example plugin's metadata failed:\n{proc.stdout}\n{proc.stderr}")
    assert (target / "pyb_example_plugin.egg-info" / "entry_points.txt").is_file()
    shutil.copytree(source / "pyb_example_plugin", target / "pyb_example_plugin")
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    yield target
    sys.modules.pop("pyb_example_plugin", None)


def test_example_plugin_installed_is_discovered_by_entry_point(installed_example):
    found = [e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == "NodeNameLength"]
    assert [e.value for e in found] == [EXAMPLE_VALUE]
    reg = Registry()  # discovers the installed entry points itself
    assert "NodeNameLength" in reg
    cls = reg.load("NodeNameLength")
    assert Path(sys.modules[cls.__module__].__file__).is_relative_to(installed_example)
    _exercise(_config_with_example(reg))
