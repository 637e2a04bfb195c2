#!/usr/bin/env python3
"""Compares `patchbench recommend --json` with the exhaustive optimum of a sweep.

usage: scripts/recommend-check.py PATCHBENCH RESULTS_DIR MODEL BOARD MAX_GRID [REC_RESULTS[,DIR...]]

RESULTS_DIR holds a sweep that measured the configs of MODEL on BOARD; the exhaustive optimum
under a budget is the `ok` row with the fewest median counts whose total RAM fits it. For a
ladder of budgets (every eighth measured total RAM, the largest, and one byte below the
smallest) the script asks `recommend` (with REC_RESULTS as `--results`, RESULTS_DIR by
default) and prints whether the two agree, and when not, how much slower the recommended
config measured. Example: recommend from the committed results plus a 5-config sweep, against
every candidate up to 3x3 measured:
    scripts/recommend-check.py target/release/patchbench all/ tiny qemu-m7 3 results,part/
"""
import csv, json, subprocess, sys
pb, folder, model, board, max_grid = sys.argv[1:6]
rec_results = sys.argv[6] if len(sys.argv) > 6 else folder
rows = {}
for r in csv.DictReader(open(f"{folder}/runs.csv")):
    if r["board"] != board: continue
    rows[(r["split"], r["patches"], r["input_in"])] = r  # later rows win
ok = [r for r in rows.values() if r["status"] == "ok"]
rams = sorted({int(r["total_ram_bytes"]) for r in ok})
budgets = rams[::max(1, len(rams)//8)] + [rams[-1], rams[0] - 1]
agree = 0
for b in budgets:
    out = subprocess.run([pb, "recommend", "--model", model, "--board", board, "--ram-budget", str(b),
                          "--max-grid", max_grid, *sum([["--results", d] for d in rec_results.split(",")], []), "--json"], capture_output=True, text=True, check=True)
    v = json.loads(out.stdout)
    fit = [r for r in ok if int(r["total_ram_bytes"]) <= b]
    best = min(fit, key=lambda r: (int(r["cycles_median"]), int(r["total_ram_bytes"]))) if fit else None
    got = v["best"]
    same = (best is None and got is None) or (best and got and int(best["split"]) == got["split"] and best["patches"] == got["patches"])
    same = bool(same)
    agree += same
    regret = ""
    if got and best and not same:
        mine = rows.get((str(got["split"]), got["patches"], "flash"))
        if mine and mine["status"] == "ok":
            regret = f" (its measured count is {100 * (int(mine['cycles_median']) / int(best['cycles_median']) - 1):+.2f} % over the optimum, total RAM {mine['total_ram_bytes']} B)"
    print(f"budget {b:>7} B: recommend {got and (got['split'], got['patches'])}, exhaustive {best and (int(best['split']), best['patches'])}, {'same' if same else 'DIFFERENT'}{regret}")
print(f"{agree} of {len(budgets)} budgets agree; model error {v['model_error']}")
