"""pool_chunks: trained pools' bytes in the database (db://pools/<hash>), and pools.blob_sha256; pools saved
before as files on the machine that built them are copied in when that file is here

A row whose uri is a host path whose file this machine lacks keeps that path: run `profilekit db upgrade`
on the machine that built the pool (its data_dir/pools/), or build the pool again.

Revision ID: 0009
Revises: 0008
"""
import hashlib
from pathlib import Path

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

CHUNK = 8 * 2**20  # settings.pool_chunk_bytes' default


def upgrade() -> None:
    op.create_table('pool_chunks',
    sa.Column('pool_hash', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('pool_hash', 'seq', name=op.f('pk_pool_chunks'))
    )
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blob_sha256', sa.String(length=64), nullable=True))
    copy_pool_files()


def copy_pool_files() -> None:
    """Each pool stored as a host path whose file exists here → its chunks, uri db://pools/<hash>."""
    connection = op.get_bind()
    pools = sa.table('pools', sa.column('pool_hash', sa.String), sa.column('uri', sa.Text),
                     sa.column('blob_sha256', sa.String))
    chunks = sa.table('pool_chunks', sa.column('pool_hash', sa.String), sa.column('seq', sa.Integer),
                      sa.column('data', sa.LargeBinary))
    rows = connection.execute(sa.select(pools.c.pool_hash, pools.c.uri).where(
        pools.c.uri.is_not(None), ~pools.c.uri.like('db://%'), ~pools.c.uri.like('s3://%'))).all()
    for pool_hash, uri in rows:
        path = Path(uri.removeprefix('file://'))
        if not path.is_file():
            continue
        digest = hashlib.sha256()
        with path.open('rb') as handle:
            for seq, data in enumerate(iter(lambda: handle.read(CHUNK), b'')):
                digest.update(data)
                connection.execute(chunks.insert().values(pool_hash=pool_hash, seq=seq, data=data))
        connection.execute(pools.update().where(pools.c.pool_hash == pool_hash).values(
            uri=f'db://pools/{pool_hash}', blob_sha256=digest.hexdigest()))


def downgrade() -> None:
    with op.batch_alter_table('pools', schema=None) as batch_op:
        batch_op.drop_column('blob_sha256')
    op.drop_table('pool_chunks')
