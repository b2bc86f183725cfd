//! Schema migrations, run on start (`purser serve`) and by `purser migrate`.
pub use sea_orm_migration::prelude::*;

mod m20261127_000001_payments;
mod m20261127_000002_customers;
mod m20261127_000003_saved_methods;
mod m20261127_000004_paypal;
mod m20261127_000005_refunds;
mod m20261127_000006_invoices;
mod m20261127_000007_billing_profiles;
mod m20261127_000008_controls;
mod m20261127_000009_admin_indexes;
mod m20261127_000010_alerts;
mod m20261127_000011_fraud_flags;
mod m20261127_000012_sandbox_refunds;
mod m20261128_000013_sandbox_paypal_refunds;
mod m20261201_000014_one_open_refund;
mod m20261201_000015_reconcile_schedule;
mod m20261201_000016_circuit_states;
mod m20261202_000017_outbox_pending;
mod m20261202_000018_shared_work;
mod m20261202_000019_fraud_screenings;
mod m20261202_000020_inbox_sweep;
mod m20261202_000021_rate_windows;
mod m20261202_000022_dispute_standing;
mod m20261202_000023_spends;
mod m20261202_000024_platform_events;
mod m20261202_000025_api_keys;
mod m20261203_000026_fraud_counts;
mod m20261203_000027_disputes_by_purchase;
mod nullable_column;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_payments::Migration),
            Box::new(m20261127_000002_customers::Migration),
            Box::new(m20261127_000003_saved_methods::Migration),
            Box::new(m20261127_000004_paypal::Migration),
            Box::new(m20261127_000005_refunds::Migration),
            Box::new(m20261127_000006_invoices::Migration),
            Box::new(m20261127_000007_billing_profiles::Migration),
            Box::new(m20261127_000008_controls::Migration),
            Box::new(m20261127_000009_admin_indexes::Migration),
            Box::new(m20261127_000010_alerts::Migration),
            Box::new(m20261127_000011_fraud_flags::Migration),
            Box::new(m20261127_000012_sandbox_refunds::Migration),
            Box::new(m20261128_000013_sandbox_paypal_refunds::Migration),
            Box::new(m20261201_000014_one_open_refund::Migration),
            Box::new(m20261201_000015_reconcile_schedule::Migration),
            Box::new(m20261201_000016_circuit_states::Migration),
            Box::new(m20261202_000017_outbox_pending::Migration),
            Box::new(m20261202_000018_shared_work::Migration),
            Box::new(m20261202_000019_fraud_screenings::Migration),
            Box::new(m20261202_000020_inbox_sweep::Migration),
            Box::new(m20261202_000021_rate_windows::Migration),
            Box::new(m20261202_000022_dispute_standing::Migration),
            Box::new(m20261202_000023_spends::Migration),
            Box::new(m20261202_000024_platform_events::Migration),
            Box::new(m20261202_000025_api_keys::Migration),
            Box::new(m20261203_000026_fraud_counts::Migration),
            Box::new(m20261203_000027_disputes_by_purchase::Migration),
        ]
    }
}
