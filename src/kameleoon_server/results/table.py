"""The results document (JSON, as the API answers it) as readable text tables, for the CLI.

Standard library only: the ``kameleoon`` admin commands work without the server's extras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["render"]

Doc = dict[str, Any]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join
    out = [line(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += [line(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def _pct(value: float | None, signed: bool = False, digits: int = 2) -> str:
    if value is None:
        return "∞"
    return f"{value * 100:{'+' if signed else ''}.{digits}f}%"


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "∞"
    return f"{value:{'+' if signed else ''}.4g}"


def _p(value: float | None) -> str:
    return "-" if value is None else (f"{value:.4f}" if value >= 0.0001 else f"{value:.1e}")


def _effect(value: float | None, relative: bool, metric: str) -> str:
    if relative:
        return _pct(value, signed=True)
    if metric == "conversion":  # a difference of rates: percentage points
        return "∞" if value is None else f"{value * 100:+.2f} pp"
    return _number(value, signed=True)


def _mean(value: float, metric: str) -> str:
    return _pct(value) if metric == "conversion" else f"{value:.4g}"


def _names(doc: Doc) -> dict[int, str]:
    return {
        v["id"]: (v["key"] or str(v["id"])) + (" (control)" if v["control"] else "")
        for v in doc["variations"]
    }


def _header(doc: Doc) -> list[str]:
    e, s, p = doc["experiment"], doc["settings"], doc["population"]
    where = f" (flag {e['flag_key']}, rule {e['rule_id']}, {e['environment']})" if e["flag_key"] else ""
    method = s["method"] + (", sequential" if s["sequential"] else "")
    caps = [f"{k} {s[k]}" for k in ("cap_percentile", "cap_revenue", "cap_count") if s[k] is not None]
    return [
        f"Experiment {e['id']} {e['name']!r}{where} on site {doc['site']}",
        f"Method: {method}; {s['difference']} effects; alpha {s['alpha']}; correction {s['correction']};"
        f" attribution {s['attribution_window_hours']:g} h; CUPED {'on' if s['cuped'] else 'off'}"
        + (f" ({s['cuped_lookback_days']:g} days)" if s["cuped"] else "")
        + (f"; capping: {', '.join(caps)}" if caps else ""),
        f"Visitors: {p['exposed_visitors']} exposed, {p['analyzed_visitors']} analysed;"
        f" excluded: {p['multiple_variation_visitors']} seen in several variations, {p['bot_visitors']} bots",
    ]


def _srm(srm: Doc) -> str:
    verdict = (
        f"SAMPLE RATIO MISMATCH (p < {srm['threshold']}): do not trust these results"
        if srm["mismatch"]
        else "ok"
    )
    return f"Sample ratio check: p = {_p(srm['p_value'])} (chi-square {srm['chi_square']:.2f}): {verdict}"


def _variations(doc: Doc) -> list[str]:
    rows = [
        [
            (v["key"] or "?") + (" (control)" if v["control"] else ""),
            str(v["id"]),
            "-" if v["configured_share"] is None else _pct(v["configured_share"], digits=1),
            str(v["visitors"]),
            _pct(v["observed_share"], digits=1),
        ]
        for v in doc["variations"]
    ]
    return _table(["variation", "id", "configured", "visitors", "observed"], rows)


def _metric_rows(doc: Doc, metric: Doc) -> tuple[list[str], list[list[str]]]:
    names, s = _names(doc), doc["settings"]
    relative, kind = s["difference"] == "relative", metric["metric"]
    bayes = s["method"] == "bayesian"
    level = f"{(1 - s['alpha']) * 100:g}%"
    header = ["variation", "visitors", "mean", f"effect ({s['difference']})", f"{level} interval"]
    header += ["chance to win", "risk"] if bayes else ["p-value", "adjusted p", "significant"]
    rows = []
    for v in metric["variations"]:
        c = v["comparison"]
        row = [
            names.get(v["variation_id"], str(v["variation_id"])),
            str(v["visitors"]),
            _mean(v["mean"], kind),
        ]
        if c is None:
            row += [""] * (len(header) - 3)
        elif c["error"]:
            row += [f"({c['error']})"] + [""] * (len(header) - 4)
        else:
            interval = f"[{_effect(c['ci_lower'], relative, kind)}, {_effect(c['ci_upper'], relative, kind)}]"
            row += [_effect(c["effect"], relative, kind), interval]
            if bayes:
                row += [_pct(c["chance_to_win"], digits=1), _effect(c["risk_treatment"], relative, kind)]
            else:
                row += [_p(c["p_value"]), _p(c["p_value_adjusted"]), "yes" if c["significant"] else "no"]
        rows.append(row)
    return header, rows


def _metric(doc: Doc, metric: Doc) -> list[str]:
    title = f"Goal {metric['goal_id']} {metric['goal_name']!r}: {metric['unit']}"
    if metric["dimension"] is not None:
        title += f" | {doc['settings']['breakdown']} = {metric['dimension']}"
    if metric["cap"] is not None:
        title += f" | visitor values capped at {metric['cap']:.4g}"
    header, rows = _metric_rows(doc, metric)
    out = [title, *_table(header, rows)]
    if metric["dimension"] is not None and metric["srm"]["mismatch"]:
        out.append("  " + _srm(metric["srm"]))
    return out


def render(doc: Doc) -> str:
    """The document as text: header, variations, sample-ratio check, one table per metric."""
    lines = [*_header(doc), "", *_variations(doc), _srm(doc["srm"])]
    for metric in doc["metrics"]:
        lines += ["", *_metric(doc, metric)]
    return "\n".join(lines) + "\n"
