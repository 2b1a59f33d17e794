"""The small dataset and sampling settings the check, report and notebook tests share."""

#: small sampling settings: enough for the tests' assertions, not for real inference
SMALL = dict(draws=200, tune=300, chains=2, seed=1)


def small_table():
    """Two groups of the embedded example: a CNN and the MLP whose norm reaches 1e130."""
    from scalingfit.fitting.simulation import example_table

    table = example_table()
    return table[table["architecture"].isin(["cnn", "mlp"])]
