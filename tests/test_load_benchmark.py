"""benchmarks/load.py on a tiny site: the mix starts with no kept pages, and a restart keeps them."""

from __future__ import annotations

import pytest


def test_the_mix_starts_without_kept_pages_and_a_restart_serves_with_them(tmp_path, capsys):
    from benchmarks import load

    data = tmp_path / "site"
    (data / "instance").mkdir(parents=True)
    # A file the mix must not start with: kb would warn that it cannot be used and keep pages in memory only.
    (data / "instance" / load.PAGE_FILE).write_bytes(b"not a database " * 300)
    load.main(["--data", str(data), "--articles", "150", "--requests", "20", "--mix-requests", "200",
               "--mix-clients", "8", "--only", "mix,restart", "--max-requests", "100"])
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| repeated mix")]
    assert [row[0] for row in rows] == ["| repeated mix (Zipf), cache on", "| repeated mix again after a restart, pages kept"]
    assert [(row[2], row[6]) for row in rows] == [("200", "0")] * 2  # every request answered, no errors
    log = (data / "gunicorn.log").read_text()
    assert "cannot be used" not in log and log.count("Booting worker") > 8  # the 8 first workers, then recycled ones
    rendered = [int(line.split(": ")[1].split()[0]) for line in out.splitlines() if "pages rendered and put" in line]
    assert len(rendered) == 2 and rendered[0] > 20 and rendered[1] < rendered[0] / 4  # the restart served the first run's


def test_max_requests_must_not_be_negative():
    from benchmarks import load

    assert load.parse_args(["--max-requests", "100"]).max_requests == 100
    with pytest.raises(SystemExit):
        load.parse_args(["--max-requests", "-1"])


def test_the_mix_cpu_benchmark_splits_the_mix_by_kind_and_first_render(tmp_path, capsys):
    from benchmarks import load, mix_cpu

    load.build_site(tmp_path, 150)
    (tmp_path / "instance" / load.PAGE_FILE).write_bytes(b"left by a run before")  # deleted first, as a new release
    mix_cpu.main(["--data", str(tmp_path), "--requests", "200"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and " ms " not in line]
    rows = [row for row in rows if row[0] != "|---"]
    assert sum(int(row[1]) for row in rows) == 200
    assert {row[0].lstrip("| ") for row in rows} <= {f"{kind}, {how}" for kind in mix_cpu.KINDS.values()
                                                    for how in ("first render", "kept page")}
    firsts = [float(row[2]) for row in rows if "first render" in row[0]]
    kept = [float(row[2]) for row in rows if "kept page" in row[0]]
    assert firsts and kept and max(kept) < max(firsts)  # a kept page is served, not rendered again
