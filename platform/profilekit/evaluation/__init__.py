"""Evaluation of methods on LaMP-style data: `profilekit eval` (plan, run, report)."""

from profilekit.evaluation.plan import DEFAULT_METHODS, METHODS, EvalConfig, EvalError
from profilekit.evaluation.report import write_report
from profilekit.evaluation.run import COLUMNS, Evaluation, read_results

__all__ = ["COLUMNS", "DEFAULT_METHODS", "METHODS", "EvalConfig", "EvalError", "Evaluation", "read_results",
           "write_report"]
