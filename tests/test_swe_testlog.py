"""Per-test statuses from real unittest and pytest runs (trusted test code we write here, run on the host)."""

import subprocess
import sys
import textwrap

import pytest

from crucible.swe.testlog import ERROR, FAILED, PASSED, SKIPPED, XFAIL, failure_blocks, parse

TESTS = textwrap.dedent('''
    import unittest

    class Cases(unittest.TestCase):
        def test_pass(self):
            self.assertEqual(1, 1)

        def test_documented(self):
            """A docstring's first line is printed between the name and the dots."""
            self.assertTrue(True)

        def test_prints(self):
            print("noise on stdout", flush=True)
            import sys; sys.stderr.write("noise on stderr ")

        def test_fail(self):
            self.assertEqual(1, 2, "one is not two")

        def test_error(self):
            raise KeyError("boom")

        @unittest.skip("not today")
        def test_skip(self):
            pass

        @unittest.expectedFailure
        def test_xfail(self):
            self.assertEqual(1, 2)

        @unittest.expectedFailure
        def test_xpass(self):
            pass

        def test_subtest_fails(self):
            for i in range(3):
                with self.subTest(i=i):
                    self.assertLess(i, 2)
''')


@pytest.fixture(scope="module")
def unittest_log(tmp_path_factory):
    d = tmp_path_factory.mktemp("ut")
    (d / "test_cases.py").write_text(TESTS)
    proc = subprocess.run([sys.executable, "-m", "unittest", "-v", "test_cases"], cwd=d, capture_output=True, text=True)
    return proc.stdout + proc.stderr


def test_unittest_statuses(unittest_log):
    s = parse(unittest_log, "unittest")
    assert s["test_cases.Cases.test_pass"] == PASSED
    assert s["test_cases.Cases.test_documented"] == PASSED
    assert s["test_cases.Cases.test_prints"] == PASSED
    assert s["test_cases.Cases.test_fail"] == FAILED
    assert s["test_cases.Cases.test_error"] == ERROR
    assert s["test_cases.Cases.test_skip"] == SKIPPED
    assert s["test_cases.Cases.test_xfail"] == XFAIL
    assert s["test_cases.Cases.test_xpass"] == FAILED
    assert s["test_cases.Cases.test_subtest_fails"] == FAILED
    assert len(s) == 9


def test_unittest_failure_blocks_hold_the_message(unittest_log):
    blocks = failure_blocks(unittest_log)
    assert "one is not two" in blocks["test_cases.Cases.test_fail"]
    assert "KeyError: 'boom'" in blocks["test_cases.Cases.test_error"]


def test_older_unittest_ids_without_the_method_name():
    log = "test_a (pkg.test_m.Cases) ... ok\ntest_b (pkg.test_m.Cases) ... FAIL\n"
    assert parse(log, "unittest") == {"pkg.test_m.Cases.test_a": PASSED, "pkg.test_m.Cases.test_b": FAILED}


def test_pytest_statuses(tmp_path):
    (tmp_path / "test_p.py").write_text(textwrap.dedent('''
        import pytest

        def test_ok():
            assert True

        def test_bad():
            assert 1 == 2

        @pytest.mark.parametrize("x", [1, 2])
        def test_param(x):
            assert x == 1

        @pytest.mark.xfail
        def test_xf():
            assert False

        @pytest.mark.skip
        def test_sk():
            pass
    '''))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider", "test_p.py"],
                          cwd=tmp_path, capture_output=True, text=True)
    s = parse(proc.stdout, "pytest")
    assert s["test_p.py::test_ok"] == PASSED
    assert s["test_p.py::test_bad"] == FAILED
    assert s["test_p.py::test_param[1]"] == PASSED
    assert s["test_p.py::test_param[2]"] == FAILED
    assert s["test_p.py::test_xf"] == XFAIL
    assert s["test_p.py::test_sk"] == SKIPPED
