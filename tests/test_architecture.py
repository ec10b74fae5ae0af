"""Imports go one way: preprocessing <- mclmcf.model <- mclmcf.training / mclmcf.serving <- mclmcf.ui <- app.

The graph is read from the source (tests/import_graph.py), function-level imports included.
"""
from import_graph import graph, layer, layer_graph

ALLOWED = {
    "preprocessing": set(),
    "mclmcf.model": {"preprocessing"},
    "mclmcf.training": {"preprocessing", "mclmcf.model"},
    "mclmcf.serving": {"preprocessing", "mclmcf.model"},
    "mclmcf.ui": {"preprocessing", "mclmcf.model", "mclmcf.serving"},
    # the thin `python -m` entry modules; deploy.py also asks preprocessing.hub whether the Hub is reachable
    "mclmcf": {"preprocessing", "mclmcf.training", "mclmcf.serving"},
    "app": {"preprocessing", "mclmcf.model", "mclmcf.serving", "mclmcf.ui"},
}


def test_every_layer_imports_only_the_layers_below_it():
    layers = layer_graph()
    assert set(layers) <= set(ALLOWED), f"modules outside the known layers: {set(layers) - set(ALLOWED)}"
    wrong = {name: targets - ALLOWED[name] for name, targets in layers.items() if targets - ALLOWED[name]}
    offenders = {f"{module} -> {target}" for module, targets in graph().items() for target in targets
                 if layer(target) in wrong.get(layer(module), ())}
    assert not offenders, f"imports against the layering: {sorted(offenders)}"


def test_the_graph_sees_function_level_imports():
    """The check would pass vacuously if the reader missed imports: it must see the trainer's lazy one."""
    assert "mclmcf.training.loop" in graph()["mclmcf.training.cli"]
