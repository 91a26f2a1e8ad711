"""ORM models only: sweeps, trials, learning-curve metrics, fits and exports.

Schema changes are Alembic versions in `migrations/versions`; keep the two in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class TrialStatus:
    """Trial lifecycle. Only SUCCEEDED and FAILED (a config failure) are shown to the optimizer as
    results; a PRUNED trial is shown only as a config already tried (never re-suggested, not in
    flight)."""

    PENDING = "pending"  # created or requeued, waiting for a worker
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # config failure: diverged, NaN, OOM, invalid
    ERROR = "error"  # infrastructure failure that used up its retries
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # stopped early: its curve could not reach the frontier; not a config failure

    FINISHED = (SUCCEEDED, FAILED, ERROR, CANCELLED, PRUNED)
    OBSERVED = (SUCCEEDED, FAILED)


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    spec_yaml: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="created")
    owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    corpus_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    trials: Mapped[list[Trial]] = relationship(back_populates="sweep", cascade="all, delete-orphan")


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("sweep_id", "number", name="uq_trial_number"),
        Index("ix_trials_sweep_status", "sweep_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 0, 1, 2... within the sweep
    suggestion_id: Mapped[str] = mapped_column(String(64), unique=True)
    # a decay branch's run (models.branches): the trial whose stable phase it was cut from
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("trials.id", ondelete="CASCADE"), nullable=True, index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # searched values only
    status: Mapped[str] = mapped_column(String(20), default=TrialStatus.PENDING)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_flops: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)  # config | infra
    failure_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )

    sweep: Mapped[Sweep] = relationship(back_populates="trials")
    curve: Mapped[list[MetricPoint]] = relationship(
        back_populates="trial", cascade="all, delete-orphan", order_by="MetricPoint.step"
    )


class MetricPoint(Base):
    """One learning-curve point of a trial."""

    __tablename__ = "metric_points"
    __table_args__ = (UniqueConstraint("trial_id", "step", name="uq_metric_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[float | None] = mapped_column(Float, nullable=True)
    flops: Mapped[float | None] = mapped_column(Float, nullable=True)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    trial: Mapped[Trial] = relationship(back_populates="curve")


class Fit(Base):
    """A scaling-law fit and large-run pick computed from a sweep's trials."""

    __tablename__ = "fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    n_trials: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Export(Base):
    """A rendered large-run config in one production format."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    fit_id: Mapped[int | None] = mapped_column(
        ForeignKey("fits.id", ondelete="SET NULL"), nullable=True
    )
    format: Mapped[str] = mapped_column(String(40))
    content: Mapped[str] = mapped_column(Text)
    predicted_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
