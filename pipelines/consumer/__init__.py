"""The consumer's side (Autoware): a pin file naming a release, `modelzoo pin`/`fetch`, and the
interface compatibility check consumer code can import."""

from pipelines.consumer.compat import IncompatibleRelease, check_fetched, check_interface

__all__ = ["IncompatibleRelease", "check_fetched", "check_interface"]
