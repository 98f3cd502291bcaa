"""key_sessions: dashboard sign-ins keyed by the sha256 of a random id (the cookie never holds the key);
ended by signing out or by revoking the key

Revision ID: 0008
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('key_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_key_sessions_key_id_api_keys'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_key_sessions'))
    )
    op.create_index(op.f('ix_key_sessions_key_id'), 'key_sessions', ['key_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_key_sessions_key_id'), table_name='key_sessions')
    op.drop_table('key_sessions')
