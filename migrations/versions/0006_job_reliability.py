"""jobs.result: what a finished job did per profile (which artifact is current and why, the profiles it
skipped), kept apart from `progress`, which a new attempt resets

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('result', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'result')
