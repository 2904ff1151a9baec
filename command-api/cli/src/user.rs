//! `ticketlog user add`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use command_api::auth::users::USERS_TREE_NAME;
use command_api::auth::{NewUser, UserDirectory};
use command_api::config::store_path;
use event_store::{EventStore, KvProvider, Role, SledOptions, SledStore};

use super::UserAddArgs;

/// Adds a user to the directory in the data directory's store.
pub fn add(args: UserAddArgs) -> anyhow::Result<ExitCode> {
    let Some(role) = Role::parse(&args.role) else {
        bail!(
            "unknown role {:?}; one of: {}",
            args.role,
            Role::ALL.map(|r| r.as_str()).join(", ")
        );
    };
    let password = match args.password {
        Some(p) => p,
        None => {
            eprint!("password for {}@{}: ", args.name, args.tenant);
            std::io::stderr().flush().ok();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let store =
        SledStore::open(store_path(&args.data), SledOptions::default()).with_context(|| {
            format!(
                "opening the store in {} (is a server running on it?)",
                args.data.display()
            )
        })?;
    let directory = UserDirectory::new(store.tree(USERS_TREE_NAME)?);
    let user = directory.add(NewUser {
        tenant: args.tenant,
        name: args.name,
        role,
        password,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(store.close())?;
    let user = user?;
    println!(
        "added {} ({}) to tenant {} with id {}",
        user.name,
        user.role.as_str(),
        user.tenant,
        user.id
    );
    Ok(ExitCode::SUCCESS)
}
