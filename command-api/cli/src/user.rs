//! `ticketlog user add` and `ticketlog user passwd`. Both run on the data
//! directory while no server does, and record the change in the log; the
//! actor is the CLI's own admin principal (`offline::cli_principal`), since
//! whoever runs the CLI holds the data directory and logs in as no one.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use command_api::auth::users::USERS_TREE_NAME;
use command_api::auth::{NewUser, Revocations, User, UserDirectory};
use command_api::service::record_user_change;
use event_store::{Actor, EventPayload, Role, SledOptions, Storage};

use super::location::{Create, StoreLocation};
use super::offline::cli_principal;
use super::{UserAddArgs, UserPasswdArgs, UserRoleArgs, UserTarget};

/// The password from the flag, or one line of stdin after a prompt.
fn password_or_prompt(given: Option<String>, name: &str, tenant: &str) -> anyhow::Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    eprint!("password for {name}@{tenant}: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The CLI's actor in `tenant`.
fn cli_actor(tenant: &str) -> Actor {
    let p = cli_principal(tenant, Role::Admin);
    Actor {
        user_id: p.user_id,
        role: p.role,
    }
}

/// Runs `change` on the store's user tree, records its audit event, closes
/// the store whatever happened.
fn with_store(
    location: &StoreLocation,
    change: impl FnOnce(&dyn Storage) -> anyhow::Result<(User, EventPayload)>,
) -> anyhow::Result<User> {
    let runtime = super::offline::runtime()?;
    let store = runtime.block_on(location.open(Create::IfMissing, SledOptions::default()))?;
    let done = change(store.as_ref()).and_then(|(user, event)| {
        runtime.block_on(record_user_change(
            store.as_ref(),
            &user.tenant,
            cli_actor(&user.tenant),
            event,
        ))?;
        Ok(user)
    });
    runtime.block_on(store.close())?;
    done
}

/// The role named `name`, or the list of roles.
fn parse_role(name: &str) -> anyhow::Result<Role> {
    match Role::parse(name) {
        Some(role) => Ok(role),
        None => bail!(
            "unknown role {name:?}; one of: {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        ),
    }
}

/// Revokes every token of `user` issued until now (they carry its old
/// password's session or its old role).
fn revoke_all(tree: Arc<dyn event_store::KvTree>, user: uuid::Uuid) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let revocations = Revocations::open(tree, u64::try_from(now.timestamp()).unwrap_or(0))?;
    revocations.revoke_user(user, u64::try_from(now.timestamp_millis()).unwrap_or(0))?;
    Ok(())
}

/// The users' tree, the directory over it and the user `target` names.
fn find_user(
    store: &dyn Storage,
    target: &UserTarget,
) -> anyhow::Result<(Arc<dyn event_store::KvTree>, UserDirectory, User)> {
    let tree = store.tree(USERS_TREE_NAME)?;
    let directory = UserDirectory::new(tree.clone());
    let Some(user) = directory.find(&target.tenant, &target.name)? else {
        bail!("no user {:?} in tenant {:?}", target.name, target.tenant);
    };
    Ok((tree, directory, user))
}

/// Adds a user to the directory in the data directory's store.
pub fn add(args: UserAddArgs) -> anyhow::Result<ExitCode> {
    let role = parse_role(&args.role)?;
    let UserTarget {
        store: location,
        tenant,
        name,
    } = args.user;
    let password = password_or_prompt(args.password, &name, &tenant)?;
    let user = with_store(&location, |store| {
        let directory = UserDirectory::new(store.tree(USERS_TREE_NAME)?);
        let user = directory.add(NewUser {
            tenant,
            name,
            role,
            password,
        })?;
        let event = EventPayload::UserCreated {
            user: user.id,
            name: user.name.clone(),
            role: user.role,
        };
        Ok((user, event))
    })?;
    println!(
        "added {} ({}) to tenant {} with id {}",
        user.name,
        user.role.as_str(),
        user.tenant,
        user.id
    );
    Ok(ExitCode::SUCCESS)
}

/// Sets a user's password and revokes every token of theirs issued until now.
pub fn passwd(args: UserPasswdArgs) -> anyhow::Result<ExitCode> {
    let target = &args.user;
    let password = password_or_prompt(args.password, &target.name, &target.tenant)?;
    let user = with_store(&target.store, |store| {
        let (tree, directory, user) = find_user(store, target)?;
        let user = directory.set_password(user.id, &password)?;
        revoke_all(tree, user.id)?;
        let event = EventPayload::UserPasswordChanged {
            user: user.id,
            reset: true,
        };
        Ok((user, event))
    })?;
    println!(
        "password of {} in tenant {} changed; their earlier tokens are revoked",
        user.name, user.tenant
    );
    Ok(ExitCode::SUCCESS)
}

/// Changes a user's role and revokes every token of theirs issued until now.
pub fn role(args: UserRoleArgs) -> anyhow::Result<ExitCode> {
    let role = parse_role(&args.role)?;
    let target = &args.user;
    let user = with_store(&target.store, |store| {
        let (tree, directory, user) = find_user(store, target)?;
        let before = directory.set_role(user.id, role)?;
        revoke_all(tree, user.id)?;
        let event = EventPayload::UserRoleChanged {
            user: user.id,
            from: before.role,
            to: role,
        };
        Ok((User { role, ..before }, event))
    })?;
    println!(
        "{} in tenant {} is now {}; their earlier tokens are revoked",
        user.name,
        user.tenant,
        user.role.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
