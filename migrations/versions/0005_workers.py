"""workers: each worker process's heartbeat, for the dashboard's liveness; artifacts indexed by size and
time (the dashboard's largest profiles and latest trained among a million)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workers',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_workers'))
    )
    op.create_index('ix_artifacts_stored_bytes', 'artifacts', ['stored_bytes'])
    op.create_index('ix_artifacts_created_at', 'artifacts', ['created_at'])
    op.create_index('ix_profiles_current_artifact_id', 'profiles', ['current_artifact_id'])


def downgrade() -> None:
    op.drop_index('ix_profiles_current_artifact_id', table_name='profiles')
    op.drop_index('ix_artifacts_created_at', table_name='artifacts')
    op.drop_index('ix_artifacts_stored_bytes', table_name='artifacts')
    op.drop_table('workers')
