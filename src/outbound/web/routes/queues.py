"""Queues, routing rules and the organisation's routing settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from outbound.domain.roles import Role
from outbound.schemas import (
    OrganizationRoutingUpdate,
    QueueCreate,
    QueueOut,
    QueueUpdate,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
)
from outbound.services.auth import Principal
from outbound.web.deps import container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1")
ADMIN = (Role.ADMIN,)
SUPERVISORS = (Role.ADMIN, Role.SUPERVISOR)
STAFF = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


@router.patch("/organization", tags=["organization"])
def patch_organization(
    data: OrganizationRoutingUpdate, request: Request, who: Principal = principal_of(*ADMIN)
) -> dict[str, Any]:
    org = container(request).queues.update_organization(who.org_id, data)
    return {
        "id": org.id,
        "name": org.name,
        "fallback_queue_id": org.fallback_queue_id,
        "reopen_closed": org.reopen_closed,
    }


@router.post("/queues", status_code=201, tags=["queues"])
def post_queue(
    data: QueueCreate, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> QueueOut:
    return container(request).queues.create_queue(who.org_id, data)


@router.get("/queues", tags=["queues"])
def list_queues(request: Request, who: Principal = principal_of(*STAFF)) -> dict[str, Any]:
    return {"data": container(request).queues.list_queues(who.org_id)}


@router.get("/queues/{queue_id}", tags=["queues"])
def get_queue(queue_id: str, request: Request, who: Principal = principal_of(*STAFF)) -> QueueOut:
    return container(request).queues.get_queue(who.org_id, queue_id)


@router.patch("/queues/{queue_id}", tags=["queues"])
def patch_queue(
    queue_id: str, data: QueueUpdate, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> QueueOut:
    return container(request).queues.update_queue(who.org_id, queue_id, data)


@router.delete("/queues/{queue_id}", status_code=204, tags=["queues"])
def delete_queue(
    queue_id: str, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> Response:
    container(request).queues.delete_queue(who.org_id, queue_id)
    return Response(status_code=204)


@router.put("/queues/{queue_id}/members/{user_id}", tags=["queues"])
def put_member(
    queue_id: str, user_id: str, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> QueueOut:
    return container(request).queues.add_member(who.org_id, queue_id, user_id)


@router.delete("/queues/{queue_id}/members/{user_id}", status_code=204, tags=["queues"])
def delete_member(
    queue_id: str, user_id: str, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> Response:
    container(request).queues.remove_member(who.org_id, queue_id, user_id)
    return Response(status_code=204)


@router.post("/routing-rules", status_code=201, tags=["queues"])
def post_rule(
    data: RoutingRuleCreate, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> RoutingRuleOut:
    return container(request).queues.create_rule(who.org_id, data)


@router.get("/routing-rules", tags=["queues"])
def list_rules(request: Request, who: Principal = principal_of(*STAFF)) -> dict[str, Any]:
    return {"data": container(request).queues.list_rules(who.org_id)}


@router.get("/routing-rules/{rule_id}", tags=["queues"])
def get_rule(
    rule_id: str, request: Request, who: Principal = principal_of(*STAFF)
) -> RoutingRuleOut:
    return container(request).queues.get_rule(who.org_id, rule_id)


@router.patch("/routing-rules/{rule_id}", tags=["queues"])
def patch_rule(
    rule_id: str,
    data: RoutingRuleUpdate,
    request: Request,
    who: Principal = principal_of(*SUPERVISORS),
) -> RoutingRuleOut:
    return container(request).queues.update_rule(who.org_id, rule_id, data)


@router.delete("/routing-rules/{rule_id}", status_code=204, tags=["queues"])
def delete_rule(
    rule_id: str, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> Response:
    container(request).queues.delete_rule(who.org_id, rule_id)
    return Response(status_code=204)
