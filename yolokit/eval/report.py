"""``yolokit eval --report``: one self-contained HTML page per evaluation, readable offline.

The page holds the headline metrics (each AP with its definition), the per-class table, the PR curves, the
confusion matrix, the TIDE error breakdown, the per-class F1-optimal thresholds and the worst images drawn with
their boxes. Every figure is a PNG that :func:`yolokit.eval.evaluate` already wrote into the run folder,
embedded as base64, so the one file can be mailed, opened from a USB stick or served as is: no script, no
stylesheet or font from the network, no file beside it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from yolokit.fileio import write_text_atomic

#: At most this many per-class PR curves are embedded (the classes with most objects); all are in pr/.
MAX_CLASS_CURVES = 12

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
     padding:0 1rem;color:#1d2129;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
.sub{color:#5f6b7a;margin-top:0} table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e4e7eb;text-align:right} th{background:#f5f7fa}
td:first-child,th:first-child{text-align:left} .big{font-size:1.6rem;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:1rem} .card{border:1px solid #e4e7eb;border-radius:6px;padding:.6rem 1rem}
.card small{display:block;color:#5f6b7a;max-width:15rem} figure{display:inline-block;margin:.4rem}
figure img{max-width:100%;border:1px solid #e4e7eb} figcaption{font-size:.8rem;color:#5f6b7a}
.na{color:#8a94a3} p.note{font-size:.85rem;color:#5f6b7a;max-width:60rem}
"""


def _img(path: Path, alt: str, width: int | None = None) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    w = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{w}>'


def _pct(v) -> str:
    return '<span class="na">n/a</span>' if v is None or v < 0 else f"{100 * v:.2f}"


def _num(v, digits: int = 3) -> str:
    return '<span class="na">n/a</span>' if v is None or (isinstance(v, float) and v < 0) else f"{v:.{digits}f}"


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cards(m: dict) -> str:
    p = m["protocol"]
    cards = []
    if "voc" in m:
        cards.append(("AP50 (VOC all-point)", _pct(m["voc"]), f"VOC2010+ devkit, IoU {p['iou']:g}, difficult ignored"))
    if "voc07" in m:
        cards.append(("AP50 (VOC2007 11-point)", _pct(m["voc07"]), f"IoU {p['iou']:g}"))
    if "coco" in m:
        c = m["coco"]
        cards.append(("COCO AP", _pct(c["AP"]), "pycocotools, IoU 0.50:0.95, 101-point"))
        cards.append(("COCO AP50", _pct(c["AP50"]), "pycocotools, IoU 0.5, 101-point: not VOC's AP50"))
    a = m["at_conf"]
    cards.append((f"P / R at score {a['conf']:g}", f"{_pct(a['precision'])} / {_pct(a['recall'])}",
                  f"TP {a['tp']}, FP {a['fp']}, F1 {_pct(a['f1'])}"))
    return '<div class="cards">' + "".join(
        f'<div class="card"><div>{html.escape(t)}</div><div class="big">{v}</div><small>{html.escape(s)}</small></div>'
        for t, v, s in cards) + "</div>"


def _per_class(m: dict) -> str:
    has_coco = "coco" in m
    head = ["class", "objects", "detections", "AP50 (VOC)", "AP50 (VOC07)", "precision", "recall"]
    head += ["COCO AP", "COCO AP50"] if has_coco else []
    rows = []
    for name, r in m["per_class"].items():
        row = [html.escape(name), r["n_gt"], r["n_det"], _pct(r["voc"]), _pct(r["voc07"]), _pct(r["precision"]),
               _pct(r["recall"])]
        if has_coco:
            row += [_pct(r.get("coco_AP")), _pct(r.get("coco_AP50"))]
        rows.append(row)
    return _table(head, rows)


def _coco(m: dict) -> str:
    c = m["coco"]
    keys = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
    note = ('<p class="note">n/a: the data has no object of that size (pycocotools reports -1).</p>'
            if any(c[k] is None or c[k] < 0 for k in keys) else "")
    return _table(list(keys), [[_pct(c[k]) for k in keys]]) + note


def _tide(t: dict) -> str:
    main, special, counts = t["main"], t["special"], t.get("counts", {})
    head = ["", *main, *special]
    rows = [["dAP (AP points)", *[f"{v:.2f}" for v in main.values()], *[f"{v:.2f}" for v in special.values()]],
            ["errors counted", *[f"{counts.get(k, '')}" for k in main], *["" for _ in special]]]
    p = t.get("protocol", {})
    return (f"<p>TIDE AP50 {t['ap']:.2f} (IoU {p.get('pos_thresh', 0.5):g}, background below "
            f"{p.get('bg_thresh', 0.1):g}; {html.escape(str(p.get('reference', '')))}).</p>" + _table(head, rows) +
            '<p class="note">A dAP is the AP50 gained by fixing that one kind of error and nothing else; they overlap '
            "and do not add up. Cls: right box, wrong class. Loc: right class, IoU 0.1-0.5. Both: both wrong. Dupe: "
            "a second detection of a found object. Bkg: on background. Miss: objects no detection came near. "
            "FalsePos / FalseNeg: the AP with every false positive / every missed object removed.</p>")


def _thresholds(th: dict) -> str:
    rows = []
    for name, r in th["per_class"].items():
        rows.append([html.escape(name), r["n_gt"], _num(r["conf"]), _pct(r["precision"]), _pct(r["recall"]),
                     _pct(r["f1"])])
    return (f"<p>Per class, the score where F1 peaks (VOC matching at IoU {th['iou']:g}); "
            "<code>yolokit detect --conf-file metrics.json</code> uses them.</p>"
            + _table(["class", "objects", "best score", "precision", "recall", "F1"], rows))


def _figures(paths: list[Path], width: int | None = None) -> str:
    return "".join(f"<figure>{_img(p, p.stem, width)}<figcaption>{html.escape(p.name)}</figcaption></figure>"
                   for p in paths)


def write_report(folder: str | Path, metrics: dict, title: str, lines: list[str] = ()) -> Path:
    """Write ``folder/report.html`` from ``metrics`` (:func:`yolokit.eval.evaluate`'s dict) and the PNGs
    ``evaluate(save_dir=folder, plots=True, worst=K)`` wrote there; ``lines`` are shown under the title (the
    settings used). Returns the path."""
    folder = Path(folder)
    m = metrics
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="sub">{m["images"]:,} images, {m["objects"]:,} objects, {m["detections"]:,} detections</p>']
    parts += [f'<p class="sub">{html.escape(line)}</p>' for line in lines]
    parts += ["<h2>Metrics</h2>", _cards(m)]
    if "coco" in m:
        parts += ["<h3>COCO (pycocotools, in %)</h3>", _coco(m)]
    parts += ["<h2>Per class</h2>", _per_class(m)]
    pr_dir = folder / "pr"
    if (pr_dir / "pr_curves.png").is_file():
        counts = {n: r["n_gt"] for n, r in m["per_class"].items()}
        from yolokit.eval.plots import safe_filename

        by_name = {f"pr_{safe_filename(n)}": n for n in counts}
        per_class = sorted((p for p in pr_dir.glob("pr_*.png") if p.stem in by_name),
                           key=lambda p: -counts[by_name[p.stem]])[:MAX_CLASS_CURVES]
        parts += ["<h2>Precision-recall curves</h2>", _figures([pr_dir / "pr_curves.png"], 700), _figures(per_class, 340)]
    if (folder / "confusion_matrix.png").is_file():
        parts += ["<h2>Confusion matrix</h2>",
                  f"<p>At score {m['at_conf']['conf']:g}, IoU {m['protocol']['iou']:g}; rows: true class, columns: "
                  "predicted.</p>", _figures([folder / "confusion_matrix.png"], 600)]
    if "tide" in m:
        parts += ["<h2>Where the AP is lost (TIDE)</h2>", _tide(m["tide"])]
    if "thresholds" in m:
        parts += ["<h2>Thresholds</h2>", _thresholds(m["thresholds"])]
    worst = sorted((folder / "worst").glob("*.png"))
    if worst:
        parts += ["<h2>Worst images</h2>",
                  "<p>The images with most errors at the report score: ground truth green, missed boxes yellow, true "
                  "positives blue, false positives coloured and labelled by error type.</p>", _figures(worst, 520)]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<link rel=\"icon\" href=\"data:,\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    return write_text_atomic(folder / "report.html", page)
