"""ncu_summary.py: per-kernel GPU time from `ncu --csv --metrics gpu__time_duration.sum` output
(one row per launch), largest first, with launch counts and shares. Usage: ncu_summary.py LOG [steps]"""
import csv
import sys

scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6, "nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6}
rows = [l for l in open(sys.argv[1], errors="replace") if l.startswith('"')]
steps = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
tot, cnt = {}, {}
for r in csv.DictReader(rows):
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    name = r["Kernel Name"].split("(")[0]
    name = name if len(name) <= 70 else name[:67] + "..."
    us = float(r["Metric Value"].replace(",", "")) * scale.get(r["Metric Unit"], 1.0)
    tot[name] = tot.get(name, 0.0) + us
    cnt[name] = cnt.get(name, 0) + 1
all_us = sum(tot.values())
print(f"{'kernel':72s} {'launches':>8s} {'us/step':>9s} {'share':>6s}")
for name, us in sorted(tot.items(), key=lambda kv: -kv[1]):
    print(f"{name:72s} {cnt[name] / steps:8.0f} {us / steps:9.1f} {100 * us / all_us:5.1f}%")
print(f"{'total GPU time':72s} {sum(cnt.values()) / steps:8.0f} {all_us / steps:9.1f}")
