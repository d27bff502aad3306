"""The printed result of a chaos run."""

from __future__ import annotations

from chaos.run import Outcome


def render(outcome: Outcome) -> str:
    """Human-readable figures: counts, faults with recovery times, checks, verdict."""
    ledger, verdict = outcome.ledger, outcome.verdict
    refusals = ", ".join(f"{name} x{count}" for name, count in sorted(ledger.refusals.items()))
    lines = [
        f"chaos run: {outcome.elapsed_s:.0f}s, {outcome.load_s:.0f}s of load",
        f"  readings offered        {ledger.offered}  ({ledger.offered / outcome.load_s:.0f}/s)",
        f"  acknowledged (202)      {verdict.acknowledged}",
        f"  stored (right values)   {verdict.stored}",
        f"  lost                    {verdict.lost}",
        f"  duplicated              {verdict.duplicated}",
        f"  mismatched values       {verdict.mismatched}",
        f"  stored, never answered  {verdict.unacknowledged_stored}  (replies lost in a fault)",
        f"  refused then retried    {len(ledger.retried_keys)} readings, "
        f"{outcome.retried_landed} landed  [{refusals or 'no refusals'}]",
        f"  abandoned by the client {ledger.abandoned}",
        f"  unexpected answers      {len(ledger.unexpected)} {ledger.unexpected[:3]}",
        f"  dead-letter queue       {outcome.dead_letters['planted']} of {outcome.planted} "
        f"planted, {outcome.dead_letters['unexpected']} unexpected",
        f"  faults injected         {len(outcome.faults)}",
    ]
    for fault in outcome.faults:
        recovered = "NEVER RECOVERED" if fault.recovery_s is None else f"{fault.recovery_s:5.2f}s"
        lines.append(
            f"    t={fault.at_s:6.1f}s  {fault.name:<34} held {fault.outage_s:5.1f}s  "
            f"recovered in {recovered}"
        )
    if outcome.commands is not None:
        commands = outcome.commands
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(commands.statuses.items()))
        lines += [
            f"  commands issued         {commands.issued}  [{statuses}]",
            f"    of which in groups    {commands.in_groups}, scheduled (not_before) "
            f"{commands.scheduled}",
            f"  commands final          {commands.final}",
            f"  executed by the unit    {commands.executed}",
            f"  executed twice          {commands.executed_twice}",
            f"  executed after expiry   {commands.executed_after_expiry}",
            f"  superseded, executed    {commands.executed_superseded}",
            f"  wrong final status      {len(commands.wrong_status)} {commands.wrong_status[:3]}",
            f"  answered, never issued  {commands.unknown_answered}",
        ]
    lines.append(f"  services that exited by themselves (restarted): {len(outcome.crashes)}")
    lines.extend(f"    {crash}" for crash in outcome.crashes)
    lines.append("  negative control (checker must catch each):")
    lines.extend(
        f"    {'caught' if ok else 'MISSED'}: {name}" for name, ok in outcome.controls.items()
    )
    lines.append(f"  verdict: {'PASS' if outcome.ok else 'FAIL'}")
    return "\n".join(lines)
