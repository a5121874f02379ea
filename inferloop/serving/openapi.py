"""What the OpenAPI page (/docs, /openapi.json) says the endpoint answers: the response models,
the request body of /invocations and the error statuses."""

from pydantic import BaseModel, Field

from inferloop.serving.contract import FORMATS


class RowResult(BaseModel):
    id: int = Field(description="The row's id, as sent")
    score: float | None = Field(None, description="Probability of the positive class (scored rows)")
    label: int | None = Field(None, description="1 when score >= INFERLOOP_DECISION_THRESHOLD")
    error: str | None = Field(None, description="Why the row was rejected (the data contract)")
    failed_checks: list[str] | None = Field(None, description="The inference suite's checks it failed")


class InvocationResponse(BaseModel):
    predictions: list[RowResult] = Field(description="One entry per row, in request order")
    model_name: str
    model_version: str = Field(description="The registered version that scored these rows")
    request_id: str
    rows_in: int
    rows_scored: int
    rows_rejected: int
    degraded: str | None = Field(
        None,
        description="Set while the monitor's confirmed breach of @champion is open: the breach, and "
        "what INFERLOOP_SERVE_DEGRADED_POLICY does about it (serve: the champion scored; fallback: "
        "@previous_champion did, named by model_version)",
    )


class ErrorResponse(BaseModel):
    error: str
    request_id: str | None = None


REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": f"Exactly one of {', '.join(FORMATS)} (MLflow's scoring formats)",
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array", "items": {}}},
                        },
                    },
                    "dataframe_records": {"type": "array", "items": {"type": "object"}},
                    "inputs": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
                },
            }
        }
    },
}
ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Malformed request or a schema error naming the column",
        401: "No API key, or not a valid one",
        403: "The key lacks the scope",
        413: "Too many rows or bytes",
        415: "Not application/json",
        429: "The key sent more requests than its rate limit: wait the seconds in Retry-After",
        503: "No model loaded yet, or the online log's queue is full (retry later)",
    }.items()
}
