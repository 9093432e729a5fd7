"""What the model's chat template does to the data: rows it refuses (bad rows with
file:line) and the ways it changes what the data says (warnings)."""

from __future__ import annotations

import json

from sage_ft_tui.engine.data.encode import record_messages
from sage_ft_tui.engine.data.load import LoadedData
from sage_ft_tui.engine.data.rows import BadRow
from sage_ft_tui.engine.data.turns import per_answer_note
from sage_ft_tui.engine.errors import SageError


def template_refusals(tok, loaded: LoadedData, max_bad_share: float) -> LoadedData:
    """Rows the chat template refuses (roles out of order, a role it lacks) become bad rows
    with file:line, counted against data.max_bad_share. A row is rendered when its shape
    (roles, tools) has not rendered before, so most rows cost a dict lookup."""
    if not loaded.records or "text" in loaded.records[0]:
        return loaded
    ok_shapes: set = set()
    keep: list[int] = []
    bad: list[BadRow] = []
    for i, (rec, where) in enumerate(zip(loaded.records, loaded.wheres)):
        msgs = record_messages(rec)
        shape = (
            tuple(m.get("role") for m in msgs),
            bool(rec.get("tools")),
            tuple(bool(m.get("tool_calls")) for m in msgs),
        )
        if shape not in ok_shapes:
            try:
                tok.render(msgs, tools=json.loads(rec["tools"]) if rec.get("tools") else None)
                ok_shapes.add(shape)
            except SageError as e:
                bad.append(
                    BadRow(
                        where,
                        e.message.replace(
                            "the chat template refused this conversation: ", "the chat template refuses this row: "
                        ),
                        where.rsplit(":", 1)[0],
                    )
                )
                continue
        keep.append(i)
    if not bad:
        return loaded
    total = max(1, loaded.total_rows)
    all_bad = loaded.bad + bad
    share = len(all_bad) / total
    if share > max_bad_share or not keep:
        raise SageError(
            f"{len(all_bad)} of {loaded.total_rows} rows are bad ({share:.0%}); first refused by the chat template: {bad[0]}",
            hint=f"fix the rows (the roles and their order the model's template accepts), or raise data.max_bad_share "
            f"(now {max_bad_share:.0%}) to skip them",
            kind="data",
        )
    loaded.keep(keep)
    loaded.bad = all_bad
    return loaded


def template_warnings(tok, records: list[dict], model: str) -> list[str]:
    """One line for each way the chat template changes what the data says: content it
    cannot render itself, a system prompt folded or moved, answers split into examples."""
    missing: dict[str, int] = {}
    with_system = n_split = convs = 0
    facts = tok.facts
    for rec in records:
        tools = json.loads(rec["tools"]) if rec.get("tools") else None
        msgs = record_messages(rec)
        for what in tok.unsupported(msgs, tools):
            missing[what] = missing.get(what, 0) + 1
        with_system += any(m.get("role") == "system" for m in msgs)
        if "messages" in rec and (facts.history or facts.system != "native"):
            convs += 1
            try:
                n_split += len(tok.examples(msgs, tools)) > 1
            except SageError:
                pass
    out = []
    if missing:
        what = ", ".join(f"{k} ({n} rows)" for k, n in missing.items())
        out.append(
            f"the chat template of {model} cannot render {what}: they are rendered as text "
            "(<tools>, <tool_call>, <tool_response>, <think> tags, the Hermes/Qwen convention); "
            "set data.tool_format to template to use the template anyway, or pick a model whose template has tool support"
        )
    if with_system and facts.system_fold:
        out.append(
            f"the chat template of {model} has no system role: the system prompt of {with_system} rows is folded "
            "into the first user turn (system, a blank line, then the user text), and the saved adapter and merged "
            "model fold it the same way when served"
        )
    if n_split:
        reason = facts.history
        if facts.system == "placed in the last user turn" and with_system:
            reason = "the template puts the system prompt only in the last user turn"
        out.append(per_answer_note(convs, n_split, reason))
    return out
