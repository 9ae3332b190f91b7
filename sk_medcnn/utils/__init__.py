"""Internal helpers of sk_medcnn (validation, torch glue); no public API."""

__all__: list[str] = []
