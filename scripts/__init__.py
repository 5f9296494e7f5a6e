"""Helper scripts; a package so that the tests, benchmarks and the rehearsal import the same modules."""
