"""Registry storage back ends behind one protocol: base (protocol, errors, key checks), local, s3, http.

Which one a registry URL names is decided by `pipelines.registry.location.RegistryLocation`.
"""

from pipelines.registry.stores.base import ObjectInfo, RegistryError, Store
from pipelines.registry.stores.local import LocalStore
from pipelines.registry.stores.s3 import S3Store

__all__ = ["LocalStore", "ObjectInfo", "RegistryError", "S3Store", "Store"]
