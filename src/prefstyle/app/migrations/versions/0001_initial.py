"""The initial schema: studies, scenes, renditions, participants, questions, uploads.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("catalog_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "scenes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.String(64), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(200), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("source_file", sa.String(400), nullable=True),
        sa.UniqueConstraint("study_id", "key", name="uq_scenes_study_key"),
    )
    op.create_index("ix_scenes_study_id", "scenes", ["study_id"])
    op.create_table(
        "renditions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scene_id", sa.Integer(), sa.ForeignKey("scenes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("file", sa.String(400), nullable=False),
        sa.Column("meta_json", sa.Text(), nullable=True),
        sa.UniqueConstraint("scene_id", "key", name="uq_renditions_scene_key"),
    )
    op.create_index("ix_renditions_scene_id", "renditions", ["scene_id"])
    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_id", sa.String(64), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("person", sa.String(80), nullable=False),
        sa.Column("device", sa.String(80), nullable=False),
        sa.Column("user", sa.String(170), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("calibration_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("consent_at", sa.DateTime(), nullable=True),
        sa.Column("calibrated_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("study_id", "user", name="uq_participants_study_user"),
    )
    op.create_index("ix_participants_study_id", "participants", ["study_id"])
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scene_id", sa.Integer(), sa.ForeignKey("scenes.id"), nullable=True),
        sa.Column("rendition_a_id", sa.Integer(), sa.ForeignKey("renditions.id"), nullable=True),
        sa.Column("rendition_b_id", sa.Integer(), sa.ForeignKey("renditions.id"), nullable=True),
        sa.Column("repeat_of_id", sa.Integer(), sa.ForeignKey("questions.id"), nullable=True),
        sa.Column("served_at", sa.DateTime(), nullable=True),
        sa.Column("answer", sa.String(16), nullable=True),
        sa.Column("response_ms", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("participant_id", "position", name="uq_questions_participant_position"),
    )
    op.create_index("ix_questions_participant_id", "questions", ["participant_id"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("participant_id", sa.Integer(), sa.ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(32), nullable=False, unique=True),
        sa.Column("display_name", sa.String(120), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_uploads_participant_id", "uploads", ["participant_id"])


def downgrade() -> None:
    for table in ("uploads", "questions", "participants", "renditions", "scenes", "studies"):
        op.drop_table(table)
