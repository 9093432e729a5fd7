"""import-linter contract types of our own (registered in pyproject's [tool.importlinter]).

`acyclic_modules`: no import cycle between the modules inside the given packages, module by
module (import-linter's own `acyclic_siblings` works on sibling packages as wholes). Imports
inside functions count, since they run; `if TYPE_CHECKING:` imports do not (the session's
`exclude_type_checking_imports`).
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import contract_utils, output
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _cycles(graph: ImportGraph, modules: set[str]) -> list[list[str]]:
    """One concrete cycle per strongly connected component of `modules` (Tarjan)."""
    edges = {
        m: sorted(
            w
            for w in graph.find_modules_directly_imported_by(m)
            # importing one's own package's __init__ is how Python loads a module, not a design cycle
            if w in modules and not m.startswith(w + ".")
        )
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return [_one_cycle(edges, comp) for comp in comps]


def _one_cycle(edges: dict[str, list[str]], comp: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself."""
    start = min(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in edges[v]:
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in comp and w not in prev and w != start:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)  # unreachable for a strongly connected component


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    containers = fields.ListField(subfield=fields.ModuleField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=AlertLevel.ERROR,
        )
        modules: set[str] = set()
        for container in self.containers:  # type: ignore[attr-defined]
            modules |= {container.name} | graph.find_descendants(container.name)
        cycles = _cycles(graph, modules)
        return ContractCheck(kept=not cycles, warnings=list(removal.warnings), metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("Import cycle: " + " -> ".join(cycle))
            output.new_line()
