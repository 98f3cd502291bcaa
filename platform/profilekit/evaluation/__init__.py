"""Evaluation of methods on LaMP-style data: `profilekit eval` — plan.py (what runs; no torch), run.py
(training and results.csv), report.py (summary and plots)."""
