"""casevac_requests: what the dispatched evacuation brings (medical crew at pickup, surgery at the destination)

The 10-1-2 timeline counts resuscitation met at pickup only when the asset had a medical crew, and surgery met
at delivery only to a facility with damage-control surgery (DOMAIN.md section 3). Recorded at dispatch, so the
timeline reads the facts of the evacuation that happened, not the fleet's state of today.

Revision ID: 0004_evacuation_care
Revises: 0003_fleet
"""
from alembic import op
import sqlalchemy as sa

revision = '0004_evacuation_care'
down_revision = '0003_fleet'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('casevac_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('medical_crew', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('surgery_at_destination', sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table('casevac_requests', schema=None) as batch_op:
        batch_op.drop_column('surgery_at_destination')
        batch_op.drop_column('medical_crew')
