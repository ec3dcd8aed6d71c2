//! Step-up at the CLI: the commands that widen access or expose data (key
//! and merchant unfreeze, a key holding `tokens:reveal`, `vault rotate-kek`,
//! `audit export`, `lockout clear`, `operator enroll` once an operator
//! exists, `operator remove`) get their audit identity from [`actor`],
//! which demands `--operator NAME` and a valid TOTP code (`--totp CODE`, or
//! typed at a prompt when standard input is a terminal) once any operator is
//! enrolled, and names the operator in the action's audit entry. With no
//! operator enrolled the command proceeds (`paywarden check` warns).
//!
//! Call it after the command's own arguments are checked and before it
//! changes anything: an accepted code is spent.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context as _;

use crate::domain::operator::{OperatorName, TotpCode};
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::operators::step_up::Attempt;
use crate::services::operators::{self, StepUp, StepUpError, StepUpPolicy};
use crate::services::Store;

use super::context::CliContext;

/// `--totp` as typed (parsed into a [`TotpCode`] by [`actor`], so that a
/// malformed code is reported in the command's own error format, never
/// echoed); `Debug` prints nothing of it.
#[derive(Clone)]
pub struct TotpArg(zeroize::Zeroizing<String>);

impl std::fmt::Debug for TotpArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpArg(***)")
    }
}

/// The `value_parser` of `--totp`.
pub fn totp_arg(raw: &str) -> Result<TotpArg, std::convert::Infallible> {
    Ok(TotpArg(zeroize::Zeroizing::new(raw.to_owned())))
}

/// The audit identity for the privileged `command`, after its step-up.
pub async fn actor(ctx: &CliContext, store: &Store, command: &str) -> anyhow::Result<Actor> {
    let operator = ctx
        .operator
        .as_deref()
        .map(OperatorName::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--operator: {e}"))?;
    if operator.is_none() && operators::count(store).await? == 0 {
        // No operator enrolled: step-up is waived (documented; `check` warns).
        return Ok(ctx.actor(command));
    }
    let code = match (ctx.totp.as_ref().map(|t| t.0.as_str()), &operator) {
        (Some(raw), _) => Some(TotpCode::parse(raw).map_err(|e| anyhow::anyhow!("--totp: {e}"))?),
        (None, Some(name)) if std::io::stdin().is_terminal() => Some(prompt(name, command)?),
        (None, _) => None,
    };
    let keyring = ctx.keyring()?;
    let attempt = Attempt {
        action: command,
        operator: operator.as_ref(),
        code: code.as_ref(),
        now: Timestamp::now(),
    };
    let cli = ctx.actor(command);
    match operators::step_up(store, &keyring, &StepUpPolicy::default(), &cli, attempt).await {
        Ok(StepUp::Verified(op)) => Ok(ctx.operator_actor(command, &op)),
        Ok(StepUp::Waived) => Ok(cli),
        Err(StepUpError::Required) => anyhow::bail!(
            "`{command}` requires a step-up: an operator is enrolled, so pass --operator NAME and --totp CODE \
             (the operator's current code; prompted for on a terminal)"
        ),
        Err(StepUpError::Service(e)) => Err(e).context("step-up could not be checked"),
        Err(refused) => anyhow::bail!("step-up refused for `{command}`: {refused} (--operator/--totp)"),
    }
}

/// Reads the code from the terminal (the prompt on standard error).
fn prompt(name: &OperatorName, command: &str) -> anyhow::Result<TotpCode> {
    eprint!("TOTP code of operator {name} for `{command}`: ");
    std::io::stderr().flush()?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    TotpCode::parse(&line).map_err(|e| anyhow::anyhow!("{e}"))
}
