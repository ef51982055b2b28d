
from .corpus import detected, face_model  # noqa: F401  (fixtures)

