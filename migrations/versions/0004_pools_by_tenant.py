"""pools have a name and the tenant that built them; each tenant may have a default pool

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('tenant', sa.String(length=64), nullable=True))
    op.create_table('tenant_pools',
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('pool_hash', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pool_hash'], ['pools.pool_hash'], name=op.f('fk_tenant_pools_pool_hash_pools')),
    sa.PrimaryKeyConstraint('tenant', name=op.f('pk_tenant_pools'))
    )


def downgrade() -> None:
    op.drop_table('tenant_pools')
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.drop_column('tenant')
        batch_op.drop_column('name')
