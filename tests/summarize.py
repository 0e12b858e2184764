#!/usr/bin/python3
"""Counts test cases from the GoogleTest XML files, meson's test log (for unit executables that
crashed before writing XML) and pytest's JUnit XML; prints "N passed, N failed" and exits 1 if
anything failed or nothing ran."""
import json
import pathlib
import sys
import xml.etree.ElementTree as ET


def count_junit(path):
    passed = failed = 0
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        if case.find("skipped") is not None or case.get("status") == "notrun":
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        else:
            passed += 1
    return passed, failed


def main():
    results = pathlib.Path(sys.argv[1])
    testlog = pathlib.Path(sys.argv[2])
    passed = failed = 0
    with_xml = set()
    for xml in sorted((results / "gtest").glob("*.xml")):
        p, f = count_junit(xml)
        passed, failed = passed + p, failed + f
        with_xml.add(xml.stem)
    # A unit executable that crashed or timed out may have left no XML: count it as failed.
    if testlog.exists():
        for line in testlog.read_text().splitlines():
            entry = json.loads(line)
            exe = pathlib.Path(entry.get("cmd", [""])[0]).name
            if exe in with_xml or entry.get("result") == "SKIP":
                continue
            if entry.get("result") == "OK":
                passed += 1  # a unit test that is not GoogleTest (e.g. the fuzz replay)
            else:
                print(f"unit executable {exe} failed without a report ({entry.get('result')})")
                failed += 1
    pytest_xml = results / "pytest.xml"
    if pytest_xml.exists():
        p, f = count_junit(pytest_xml)
        passed, failed = passed + p, failed + f
    else:
        print("pytest wrote no report")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
