"""The typed layer graph (cnndsl.ir.Graph): ordered inputs with roles, the scope tree, and the
networkx view that cnndsl.build_graph hands out."""
from __future__ import annotations

import networkx as nx
import pytest

import cnndsl
from cnndsl import ir, layers
from cnndsl.api import check_spec, layer_rows
from cnndsl.lowering import plan
from cnndsl.render import build_diagram
from cnndsl.summary import summarize


@pytest.mark.parametrize("spec", ["zoo:lenet5", "zoo:resnet18", "zoo:googlenet"])
def test_build_graph_is_networkx_with_the_pipelines_contents(spec):
    ours = check_spec(spec)
    public = cnndsl.build_graph(spec)
    # a networkx.DiGraph (the subclass that shows itself in Jupyter, cnndsl.notebook)
    assert type(ours) is ir.Graph and isinstance(public, nx.DiGraph)
    order = [node.id for node in ours.order()]
    assert order == list(nx.lexicographical_topological_sort(public))
    assert list(public.nodes) == order
    for node in ours.order():
        data = public.nodes[node.id]
        assert data["kind"] == node.kind.name and data["shape"] == node.shape
        assert data["inputs"] == [(e.node, e.role) for e in node.inputs]
        assert sorted(public.predecessors(node.id)) == sorted({e.node for e in node.inputs})
    assert layer_rows(ours) == layer_rows(public.graph["ir"])
    # the backends read either form alike
    assert summarize(ours).rows == summarize(public).rows
    assert plan(ours) == plan(public)
    assert build_diagram(ours).source == build_diagram(public).source
    # LeNet-5's 61,706 parameters (lecture notes), ResNet-18's 11,689,512 (torchvision)
    expected = {"zoo:lenet5": 61_706, "zoo:resnet18": 11_689_512}
    if spec in expected:
        assert public.graph["totals"]["params"] == expected[spec]


def test_a_repeated_operand_is_two_inputs():
    graph = check_spec("input 4x4x2\nconcat(identity, RELU, identity)")
    cat = graph.output_node
    assert [e.node for e in cat.inputs] == [graph.input, graph.input + 1, graph.input]
    assert [e.role for e in cat.inputs] == ["branch1", "branch2", "branch3"]
    assert graph.uses(graph.input_node) == 3 and len(graph.users(graph.input_node)) == 2
    public = cnndsl.build_graph("input 4x4x2\nconcat(identity, RELU, identity)")
    out = public.graph["output"]
    assert public.edges[0, out]["roles"] == ["branch1", "branch3"]
    assert public.edges[0, out]["index"] == 0


def test_residual_inputs_are_body_then_shortcut_and_the_projection_keeps_the_role():
    graph = check_spec("input 9x9x4\nresidual(CONV(8, 3, s=2, pad=1) - BN - RELU)")
    add = graph.output_node
    assert [e.role for e in add.inputs] == [ir.BODY, ir.SHORTCUT]
    projection = graph[add.inputs[1].node]
    assert projection.kind.batch_norm and projection.implicit  # conv1x1 then BN, torchvision's
    conv = graph.inputs(projection)[0]
    assert conv.kind is layers.lookup("CONV") and conv.params["stride"] == (2, 2)
    assert graph.inputs(conv) == [graph.input_node]


def test_insertions_rewire_users_and_keep_roles():
    g = ir.Graph()
    relu = layers.lookup("RELU")
    a = g.add(layers.input_kind(), [], None, g.root, {})
    b = g.add(relu, [ir.Edge(a.id)], None, g.root, {})
    s = g.add(layers.merge_kind("add"), [ir.Edge(b.id, ir.BODY), ir.Edge(a.id, ir.SHORTCUT)],
              None, g.root, {})
    g.input, g.output = a.id, s.id
    mid = g.insert_after(b, relu, {}, implicit=True)
    assert g.inputs(s) == [mid, a] and g.users(b) == [mid] and g.users(mid) == [s]
    pre = g.insert_before(s, 1, relu, {})
    assert [e.role for e in s.inputs] == [ir.BODY, ir.SHORTCUT]
    assert g.inputs(s) == [mid, pre] and g.users(a) == [b, pre]
    assert [n.id for n in g.order()] == [a.id, b.id, mid.id, pre.id, s.id]
    last = g.insert_after(s, relu, {})
    assert g.output == last.id


def test_the_scope_tree_holds_blocks_repeats_and_branches():
    text = ("input 8x8x4\ndef unit(c) = CONV(c, 3, pad=1) - RELU\n"
            "(unit(4)) * 2 - concat(unit(2), identity)")
    graph = check_spec(text)
    kinds = [(s.kind, s.name, s.index, s.count) for s in graph.root.children]
    assert kinds == [("repeat", "x2", 0, 2), ("repeat", "x2", 1, 2), ("branch", "concat", 0, 2),
                     ("branch", "concat", 1, 2)]
    first, second = graph.root.children[:2]
    assert first.id == second.id  # iterations of one repeat share the construct's id
    block = first.children[0]
    assert (block.kind, block.name, block.args) == ("block", "unit", {"c": 4})
    assert block.span.line == 3 and block.path == (first, block)
    conv = graph.scope_tree().items[1].items[0].items[0]
    assert conv.kind is layers.lookup("CONV") and conv.scope is block
    assert graph.root.children[2].children[0].args == {"c": 2}
