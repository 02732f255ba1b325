//! The server as its users meet it: a real HTTP server on port 0 over a fresh database,
//! driven through the API. Every test runs on SQLite and on PostgreSQL.

mod attachments;
mod browser;
mod errors;
mod harness;
mod isolation;
mod mail;
mod metrics;
mod routing;
mod scenario_customer_support;
mod scenario_insurance_claims;
mod scenario_it_helpdesk;
mod scenario_technical_support;
mod scenario_telemarketing;
mod staffing;
mod support;
mod web_admin;
mod web_dashboard;
mod web_isolation;
mod web_pages;
mod web_portal;
mod web_session;
mod web_work;
