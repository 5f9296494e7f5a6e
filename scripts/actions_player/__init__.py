"""A local player of GitHub Actions workflows (the `run:` steps, `${{ }}` expressions, matrix legs and
artifacts), for the release rehearsal (scripts/rehearse-release) and its tests. Not part of the product:
the `modelzoo` package never imports it."""
