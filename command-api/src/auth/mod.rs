//! Authentication: JWT verification (one algorithm, fixed by configuration),
//! token issuing for the built-in directory, and the user directory itself.

pub mod claims;
pub mod error;
pub mod jwt;
pub mod password;
pub mod revocations;
pub mod secret;
pub mod users;

pub use claims::Claims;
pub use error::AuthError;
pub use jwt::{IssuedToken, JwtAlgorithm, JwtAuth, VerifiedToken};
pub use revocations::{RevocationScope, Revocations};
pub use users::{NewUser, User, UserDirectory};
