"""idempotency keys scoped by tenant: unique (tenant, idempotency_key) instead of the key alone, so one
tenant's key neither collides with nor reveals another tenant's

Revision ID: 0007
Revises: 0005
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_idempotency_key', type_='unique')
        batch_op.create_unique_constraint('uq_jobs_tenant_idempotency_key', ['tenant', 'idempotency_key'])


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_tenant_idempotency_key', type_='unique')
        batch_op.create_unique_constraint('uq_jobs_idempotency_key', ['idempotency_key'])
