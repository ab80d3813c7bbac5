"""Deployments: serve a run's checkpoint behind an OpenAI-compatible endpoint on a worker host
(start, list, stop, delete). The endpoint itself is served by the worker, not by this app."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import RunDep, SessionDep
from app.api.export_schemas import DeploymentCreate, DeploymentPublic
from app.core.config import settings
from app.domain import deployments as service
from app.domain.models import Deployment

router = APIRouter(tags=["deployments"])


def public(deployment: Deployment, api_key: str | None = None) -> DeploymentPublic:
    fields = {name: getattr(deployment, name) for name in DeploymentPublic.model_fields
              if name not in ("requires_api_key", "base_url", "api_key")}
    # The endpoint's address as the worker binds it (TUNEDECK_DEPLOYMENT_HOST, or the host name
    # of the worker when that listens on every interface).
    bind = settings.deployment_host
    where = deployment.host if bind in ("0.0.0.0", "::") else bind
    url = (f"http://{where}:{deployment.port}/v1"
           if deployment.status == "serving" and deployment.port else None)
    return DeploymentPublic(**fields, requires_api_key=deployment.api_key_hash is not None,
                            base_url=url, api_key=api_key)


@router.post("/api/runs/{run_id}/deployments", status_code=201, response_model=DeploymentPublic)
def create_deployment(run: RunDep, body: DeploymentCreate, session: SessionDep
                      ) -> DeploymentPublic:
    """Start an endpoint for a checkpoint; the answer carries its API key, once."""
    deployment, key = service.create_deployment(session, run=run, **body.model_dump())
    return public(deployment, key)


@router.get("/api/runs/{run_id}/deployments", response_model=list[DeploymentPublic])
def list_run_deployments(run: RunDep, session: SessionDep) -> list[DeploymentPublic]:
    """A run's deployments, newest first."""
    return [public(d) for d in service.list_deployments(session, run_id=run.id)]


@router.get("/api/deployments", response_model=list[DeploymentPublic])
def list_deployments(session: SessionDep) -> list[DeploymentPublic]:
    """Every deployment, newest first (the playground picks one to answer from)."""
    return [public(d) for d in service.list_deployments(session)]


@router.get("/api/deployments/{deployment_id}", response_model=DeploymentPublic)
def get_deployment(deployment_id: int, session: SessionDep) -> DeploymentPublic:
    """Status, where it listens, and why it failed."""
    return public(service.get_deployment(session, deployment_id))


@router.post("/api/deployments/{deployment_id}/stop", response_model=DeploymentPublic)
def stop_deployment(deployment_id: int, session: SessionDep) -> DeploymentPublic:
    """Stop the endpoint (its worker stops the engine and frees the port)."""
    deployment = service.get_deployment(session, deployment_id)
    return public(service.request_stop(session, deployment))


@router.delete("/api/deployments/{deployment_id}", status_code=204,
               responses={409: {"description": "still starting or serving"}})
def delete_deployment(deployment_id: int, session: SessionDep) -> Response:
    """Forget a stopped or failed deployment."""
    service.delete_deployment(session, service.get_deployment(session, deployment_id))
    return Response(status_code=204)
