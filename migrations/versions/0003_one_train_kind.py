"""one job kind for training, and jobs that name their pool

Jobs of kind train_many become train (both were handled alike); a job's params name its pool under
"pool" (a hash, or random-N) instead of "pool_hash".

Revision ID: 0003
Revises: 0002
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

jobs = sa.table('jobs', sa.column('id', sa.String), sa.column('kind', sa.String), sa.column('params', sa.JSON))


def upgrade() -> None:
    connection = op.get_bind()
    connection.execute(jobs.update().where(jobs.c.kind == 'train_many').values(kind='train'))
    for job_id, params in connection.execute(sa.select(jobs.c.id, jobs.c.params)).all():
        params = json.loads(params) if isinstance(params, str) else params
        if isinstance(params, dict) and 'pool_hash' in params:
            params = {k: v for k, v in params.items() if k != 'pool_hash'} | {'pool': params['pool_hash']}
            connection.execute(jobs.update().where(jobs.c.id == job_id).values(params=params))


def downgrade() -> None:
    connection = op.get_bind()
    for job_id, params in connection.execute(sa.select(jobs.c.id, jobs.c.params)).all():
        params = json.loads(params) if isinstance(params, str) else params
        if isinstance(params, dict) and 'pool' in params:
            params = {k: v for k, v in params.items() if k != 'pool'} | {'pool_hash': params['pool']}
            connection.execute(jobs.update().where(jobs.c.id == job_id).values(params=params))
