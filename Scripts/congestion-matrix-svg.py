#!/usr/bin/env python3
"""Plots the congestion control matrix of `quic-sim-bench cc-matrix` (issue 20) as an SVG.

Reads the benchmark's output on stdin (its "csv,rtt,loss,link,algorithm,goodput,finished"
lines; other lines are ignored) and writes grouped bars, one group per RTT × loss cell and
one panel per link rate, each bar the goodput as a share of the link.

    quic-sim-bench cc-matrix | python3 Scripts/congestion-matrix-svg.py docs/congestion-matrix.svg
"""
import sys

COLORS = {"NewReno": "#888", "CUBIC": "#37a", "BBR": "#d64"}


def main():
    rows = []
    for line in sys.stdin:
        parts = line.strip().split(",")
        if len(parts) == 7 and parts[0] == "csv":
            rows.append((int(parts[1]), int(parts[2]), int(parts[3]), parts[4], float(parts[5]), parts[6] == "1"))
    links = sorted({r[2] for r in rows})
    cells = sorted({(r[0], r[1]) for r in rows})
    algorithms = [a for a in COLORS if any(r[3] == a for r in rows)]
    bar, group_gap, panel_height, left, top = 14, 16, 170, 50, 64
    group = bar * len(algorithms) + group_gap
    width = left + len(cells) * group + 20
    height = top + len(links) * (panel_height + 50) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           '<text x="10" y="18" font-size="14">Goodput as a share of the bottleneck, on the simulator (issue 20)</text>']
    for i, name in enumerate(algorithms):
        out.append(f'<rect x="{left + i * 85}" y="28" width="10" height="10" fill="{COLORS[name]}"/>')
        out.append(f'<text x="{left + 14 + i * 85}" y="37">{name}</text>')
    for p, link in enumerate(links):
        y0 = top + p * (panel_height + 50)
        base = y0 + panel_height
        out.append(f'<text x="{left}" y="{y0 + 4}" font-size="12">{link} Mbit/s</text>')
        for share in (0, 50, 100):
            y = base - share / 100 * (panel_height - 20)
            out.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{share}%</text>')
        for c, (rtt, loss) in enumerate(cells):
            x = left + c * group
            for a, name in enumerate(algorithms):
                match = [r for r in rows if r[0] == rtt and r[1] == loss and r[2] == link and r[3] == name]
                if not match:
                    continue
                share = min(match[0][4] / link, 1.0)
                h = share * (panel_height - 20)
                out.append(f'<rect x="{x + a * bar}" y="{base - h:.1f}" width="{bar - 1}" height="{h:.1f}" fill="{COLORS[name]}"/>')
            out.append(f'<text x="{x + group / 2 - group_gap / 2}" y="{base + 14}" text-anchor="middle">{rtt} ms</text>')
            out.append(f'<text x="{x + group / 2 - group_gap / 2}" y="{base + 27}" text-anchor="middle">{loss} % loss</text>')
    out.append("</svg>")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
