"""Admin API: experiment results (``GET /api/sites/{site}/experiments/{experiment_id}/results``)."""

from __future__ import annotations

from typing import Any

from kameleoon_server.results.assemble import ResultsRequest, compute_results
from kameleoon_server.results.experiment import find_experiment
from kameleoon_server.results.params import PARAMS, parse_fields
from kameleoon_server.results.schema import ResultsDocument
from kameleoon_server.routes._admin_kit import ApiError, Call, endpoint, load

_PARAMETERS = tuple(
    {"name": p.name, "in": "query", "required": False, "description": p.help, "schema": p.schema}
    for p in PARAMS
)


@endpoint(
    "GET",
    "/api/sites/{site}/experiments/{experiment_id}/results",
    "Experiment results: visitors, sample-ratio check and every goal metric per variation",
    tag="results",
    parameters=_PARAMETERS,
    response=ResultsDocument,
)
async def experiment_results(call: Call) -> Any:
    record, model = await load(call)
    experiment = find_experiment(model, call.int_param("experiment_id"))
    params = {name: call.request.query_params.getlist(name) for name in call.request.query_params}
    try:
        request = ResultsRequest(**parse_fields(params))
        return await compute_results(call.state.storage, record.id, record.code, experiment, request)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
