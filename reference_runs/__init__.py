"""Reference training runs that write the canonical table: the perceptron and deep nets.

Run ``python -m reference_runs --help`` for the commands.
"""
