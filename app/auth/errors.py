"""Authentication errors, in the domain error tree of ``app.errors``.

AndonError
 ├── Unauthorized               401  no key, an unknown key or a revoked key
 └── Forbidden                  403  the key's role or queue scope does not allow it
"""

from __future__ import annotations

from app.errors import AndonError


class Unauthorized(AndonError):
    status = 401
    title = "Unauthorized"


class Forbidden(AndonError):
    status = 403
    title = "Forbidden"
