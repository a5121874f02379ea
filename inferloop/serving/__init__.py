"""`inferloop serve`: the online endpoint. It scores a few rows in milliseconds with the model
behind @champion (followed without a restart), behind API keys and the dataset's data contract,
and appends every scored row to the lake so monitoring sees online traffic too.

    keys.py        API keys: stored as SHA-256 hashes with scopes, compared in constant time
    contract.py    a request body -> the rows to score and the rows rejected, with reasons
    champion.py    follows @champion: polls the registry, loads a new version, swaps atomically
    batching.py    coalesces concurrent requests into one predict call
    online_log.py  appends scored rows to the lake through a bounded queue
    rate_limit.py  the per-key rate limit: a token bucket per API key (429 with Retry-After)
    v2.py          the Open Inference Protocol (V2) request and answer, for tabular rows
    metrics.py     the Prometheus metrics of /metrics
    openapi.py     what the OpenAPI page documents: response models, request body, errors
    app.py         the FastAPI application: /invocations, /v2/models/*, /health/*, /metrics
    server.py      runs it under uvicorn
"""
