"""api_keys.rows_per_second: a key's predict rate limit (rows/s, a token bucket); NULL takes the server's
default (PROFILEKIT_RATE_LIMIT_ROWS_PER_SECOND)

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rows_per_second', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('rows_per_second')
