"""fleet_version: one counter bumped by every committed write to assets or facilities (casevac.fleet.versions),
against which a process validates the fleet it keeps in memory

Revision ID: 0014_fleet_version
Revises: 0013_outbound
"""
from alembic import op
import sqlalchemy as sa

revision = '0014_fleet_version'
down_revision = '0013_outbound'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('fleet_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_version'))
    )


def downgrade():
    op.drop_table('fleet_version')
