"""Hostile-query limits: depth, aliases and size, measured in time linear in the document.

A document's cost is measured over its selections *as executed*, i.e. with every fragment
spread replaced by the fragment's selections. Re-walking a fragment at each spread (as
Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` did) costs time exponential in
the document: 21 fragments that each spread the next twice are 825 bytes and expand to
3,145,728 selections, and walking them blocked the event loop for seconds. Here each fragment is
measured once and its cost reused at every spread, so a document costs one step per
selection it contains (:attr:`Measurement.steps`), whatever its fragment shape. A spread of
a fragment already being measured (a cycle, which ``NoFragmentCyclesRule`` refuses) or of an
unknown one adds nothing beyond itself, so measuring always ends.

Each operation of the document is checked on its own (only one of them runs):

* **depth** ≤ :data:`MAX_DEPTH` (10): fields nested in fields, counted as Strawberry's depth
  limiter did, so the limit means what it meant: a leaf adds nothing, each field with a
  selection adds one, and introspection fields (``__schema``, ``__type``) are not counted.
  Introspection is deep by nature (GraphiQL's query nests ``ofType`` nine times through its
  ``TypeRef`` fragment) but not costly: its size is bounded below, and graphql-core's
  ``MaxIntrospectionDepthRule`` (one of its standard rules) bounds how many of its lists
  nest (``types { fields { type { fields ...``). The client's deepest document is 6 deep.
* **aliases** ≤ :data:`MAX_ALIASES` (15), counted once fragments are expanded: aliases are
  how one document asks for the same expensive field many times. The client uses none.
* **selections** ≤ :data:`MAX_SELECTIONS` (2,000): fields, fragment spreads and inline
  fragments, each counted once per place it appears once fragments are expanded. This is
  the size of what validation rules and the executor walk, so it bounds their work as well.
  Spreads count, not only fields, so that a fan-out of spreads that ends in no field (an
  unknown fragment, a cycle) is bounded too. GraphiQL's introspection query (every option
  on) makes 242, the client's largest document (``PendingQueueChanged``) 87: the limit is
  eight times the first. Each selection written takes a token, and a document has at most
  2,000 (``MAX_TOKENS``), so only fragments that are spread many times can reach it.

The limits are checked before graphql-core's own rules (:mod:`server.graphql.extensions`), so
a document over them is refused without being walked again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from .errors import GRAPHQL_VALIDATION_FAILED

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_SELECTIONS = 2_000


@dataclass(frozen=True, slots=True)
class Cost:
    depth: int
    aliases: int
    selections: int


_NOTHING = Cost(0, 0, 0)


class _Frame:
    """A selection set being measured; ``index`` is the next selection to look into."""

    __slots__ = ("fragment", "index", "selection_set")

    def __init__(self, selection_set: SelectionSetNode, fragment: str | None = None) -> None:
        self.selection_set = selection_set
        self.fragment = fragment
        self.index = 0


class Measurement:
    """The cost of each operation of ``document``; every fragment is measured at most once.

    The walk keeps its own stack rather than recursing, so a long chain of fragments or
    deeply nested selections cannot exhaust the interpreter's recursion limit.
    """

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.steps = 0
        """Selections summed so far: each selection of the document at most once."""
        self.fragment_measures: Counter[str] = Counter()
        """How many times each fragment was measured: at most once."""
        self._fragment_costs: dict[str, Cost] = {}
        self._nested: dict[int, Cost] = {}
        self.operations = [
            (d, self._measure(d.selection_set))
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        ]

    def _measure(self, root: SelectionSetNode) -> Cost:
        stack = [_Frame(root)]
        measuring: set[str] = set()
        while stack:
            frame = stack[-1]
            inner = self._next_unmeasured(frame, measuring)
            if inner is not None:
                stack.append(inner)
                continue
            stack.pop()
            cost = self._sum(frame.selection_set)
            if frame.fragment is None:
                self._nested[id(frame.selection_set)] = cost
            else:
                self._fragment_costs[frame.fragment] = cost
                self.fragment_measures[frame.fragment] += 1
                measuring.discard(frame.fragment)
        return self._nested.pop(id(root))

    def _next_unmeasured(self, frame: _Frame, measuring: set[str]) -> _Frame | None:
        """The next selection set ``frame`` needs measured first, or ``None`` once it has all."""
        selections = frame.selection_set.selections
        while frame.index < len(selections):
            selection = selections[frame.index]
            frame.index += 1
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in self._fragment_costs or name in measuring or name not in self.fragments:
                    continue
                measuring.add(name)
                return _Frame(self.fragments[name].selection_set, name)
            assert isinstance(selection, FieldNode | InlineFragmentNode)
            if selection.selection_set is not None:
                return _Frame(selection.selection_set)
        return None

    def _sum(self, selection_set: SelectionSetNode) -> Cost:
        depth = aliases = selections = 0
        for selection in selection_set.selections:
            self.steps += 1
            selections += 1
            if isinstance(selection, FragmentSpreadNode):
                # Measured above, or being measured (a cycle), or unknown: then nothing.
                inner = self._fragment_costs.get(selection.name.value, _NOTHING)
                nested = inner.depth
            elif isinstance(selection, InlineFragmentNode):
                inner = self._nested.pop(id(selection.selection_set))
                nested = inner.depth
            else:
                assert isinstance(selection, FieldNode)
                aliases += selection.alias is not None
                if selection.selection_set is None:
                    continue
                inner = self._nested.pop(id(selection.selection_set))
                nested = 0 if selection.name.value.startswith("__") else 1 + inner.depth
            depth = max(depth, nested)
            aliases += inner.aliases
            selections += inner.selections
        return Cost(depth, aliases, selections)


def _label(operation: OperationDefinitionNode) -> str:
    kind = operation.operation.value
    return f"the {kind} {operation.name.value}" if operation.name else f"the {kind}"


def _error(message: str, operation: OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(message, operation, extensions={"code": GRAPHQL_VALIDATION_FAILED})


def check(document: DocumentNode) -> list[GraphQLError]:
    """One error per limit an operation of ``document`` exceeds; none when all are within."""
    errors: list[GraphQLError] = []
    for operation, cost in Measurement(document).operations:
        label = _label(operation)
        if cost.depth > MAX_DEPTH:
            errors.append(
                _error(f"{label}'s depth {cost.depth:,} exceeds the limit of {MAX_DEPTH:,}", operation)
            )
        if cost.aliases > MAX_ALIASES:
            errors.append(
                _error(
                    f"{label} uses {cost.aliases:,} aliases once fragments are expanded; "
                    f"the limit is {MAX_ALIASES:,}",
                    operation,
                )
            )
        if cost.selections > MAX_SELECTIONS:
            errors.append(
                _error(
                    f"{label} selects {cost.selections:,} fields and fragments once fragments are "
                    f"expanded; the limit is {MAX_SELECTIONS:,}",
                    operation,
                )
            )
    return errors
