"""Helpers the GitHub Actions workflows call, one `modelzoo ci ...` command per workflow step.

The workflows in .github/workflows stay thin: which models a pull request touches, the model x
runner-architecture matrix, whether a tag may be released, whether the workspace holds the bytes
that were verified for this commit, the pull-request comment and the MODELS.md commit-back are all
decided here, where they are tested.
"""
