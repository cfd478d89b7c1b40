//! One PKCS#11 token: its module loaded once per process, a small pool of logged-in
//! sessions, and the few operations ferrokms needs (find or make a non-extractable AES-256
//! key, AES-GCM inside the token).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

/// Bits of an AES-GCM tag made inside the token.
const TAG_BITS: u64 = 128;
/// Logged-in sessions kept open for reuse; more are opened under load and closed after.
const IDLE_SESSIONS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("loading the PKCS#11 module {module}: {reason}")]
    Module { module: String, reason: String },
    #[error("no initialized token is labelled {0:?}")]
    TokenNotFound(String),
    #[error("the token refused the PIN")]
    PinIncorrect,
    #[error("the token's PIN is locked")]
    PinLocked,
    #[error("no secret key labelled {0:?} in the token")]
    KeyNotFound(String),
    #[error("the key labelled {0:?} can leave the token (it is extractable or not sensitive)")]
    KeyExtractable(String),
    #[error("the token is not reachable: {0}")]
    Unreachable(String),
    #[error("the token could not authenticate the data")]
    Unauthentic,
    #[error("PKCS#11 call failed: {0}")]
    Pkcs11(String),
    #[error("no randomness available")]
    Random,
}

impl HsmError {
    fn from_ck(e: CkError) -> Self {
        match e {
            CkError::Pkcs11(rv, function) => match rv {
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange => {
                    HsmError::PinIncorrect
                }
                RvError::PinLocked => HsmError::PinLocked,
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid => HsmError::Unauthentic,
                RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::CryptokiNotInitialized => {
                    HsmError::Unreachable(format!("{function:?}: {rv:?}"))
                }
                _ => HsmError::Pkcs11(format!("{function:?}: {rv:?}")),
            },
            other => HsmError::Pkcs11(format!("{other:?}")),
        }
    }

    /// Whether the session that saw this error should be closed rather than reused.
    fn spoils_session(&self) -> bool {
        matches!(self, HsmError::Unreachable(_) | HsmError::Pkcs11(_))
    }
}

/// A token PIN (a CloudHSM crypto user's password, in AWS's terms). Wiped when dropped;
/// `Debug` never shows it.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    pub fn new(pin: Zeroizing<String>) -> Self {
        Pin(pin)
    }
    fn auth(&self) -> AuthPin {
        AuthPin::from(self.0.as_str())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Where a token is: the module that drives it, the token's label and, where labels may
/// repeat (partitions of one HSM), its slot.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub module: PathBuf,
    pub token_label: String,
    /// When given, the token must be in this slot (and still carry `token_label`).
    pub slot: Option<u64>,
    pub pin: Pin,
}

/// A PKCS#11 module may be initialized once per process, so every token of one module
/// shares its context.
fn module(path: &Path) -> Result<Pkcs11, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let fail = |reason: String| HsmError::Module {
        module: path.display().to_string(),
        reason,
    };
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| fail("a thread panicked while loading it".into()))?;
    if let Some(loaded) = modules.get(path) {
        return Ok(loaded.clone());
    }
    let pkcs11 = Pkcs11::new(path).map_err(|e| fail(e.to_string()))?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(fail(format!("{e:?}"))),
    }
    modules.insert(path.to_owned(), pkcs11.clone());
    Ok(pkcs11)
}

/// A secret key inside a token, by its object handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenKey(ObjectHandle);

/// An opened, logged-in token.
pub struct Token {
    pkcs11: Pkcs11,
    slot: Slot,
    label: String,
    pin: Pin,
    idle: Mutex<Vec<Session>>,
    /// Operations run in the token, for metrics and tests.
    operations: AtomicU64,
    /// Keys found or made, by label: a key is looked up in the token once.
    keys: Mutex<HashMap<String, TokenKey>>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:?})", self.label)
    }
}

impl Token {
    /// Loads the module, finds the token by label and logs in as its user.
    pub fn open(spec: &TokenSpec) -> Result<Token, HsmError> {
        let pkcs11 = module(&spec.module)?;
        let slots = pkcs11
            .get_slots_with_initialized_token()
            .map_err(HsmError::from_ck)?;
        // Another token's trouble (one being removed, say) must not hide this one: a slot
        // whose token cannot be read is passed over, and its error told only if no slot holds
        // the token.
        let (mut found, mut unreadable) = (None, None);
        for slot in slots {
            if spec.slot.is_some_and(|id| id != slot.id()) {
                continue;
            }
            match pkcs11.get_token_info(slot) {
                Ok(info) if info.label().trim_end() == spec.token_label => {
                    found = Some(slot);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    unreadable.get_or_insert(e);
                }
            }
        }
        let slot = match (found, unreadable) {
            (Some(slot), _) => slot,
            (None, Some(e)) => return Err(HsmError::from_ck(e)),
            (None, None) => {
                return Err(HsmError::TokenNotFound(match spec.slot {
                    Some(id) => format!("{} in slot {id}", spec.token_label),
                    None => spec.token_label.clone(),
                }))
            }
        };
        let token = Token {
            pkcs11,
            slot,
            label: spec.token_label.clone(),
            pin: spec.pin.clone(),
            idle: Mutex::new(Vec::new()),
            operations: AtomicU64::new(0),
            keys: Mutex::new(HashMap::new()),
        };
        // Log in now, so that a wrong PIN is told at once.
        token.with_session(|_| Ok(()))?;
        Ok(token)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// How many operations (on a session of the pool) this process has run in the token.
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    fn new_session(&self) -> Result<Session, HsmError> {
        let session = self
            .pkcs11
            .open_rw_session(self.slot)
            .map_err(HsmError::from_ck)?;
        // Login is per application and token: the first session logs every one in.
        match session.login(UserType::User, Some(&self.pin.auth())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(HsmError::from_ck(e)),
        }
    }

    /// Runs `f` on a logged-in session of the pool (a new one if none is idle).
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let session = match idle {
            Some(s) => s,
            None => self.new_session()?,
        };
        self.operations.fetch_add(1, Ordering::Relaxed);
        let result = f(&session);
        let keep = !matches!(&result, Err(e) if e.spoils_session());
        if keep {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < IDLE_SESSIONS {
                    idle.push(session);
                }
            }
        }
        result
    }

    /// Closes every pooled session; with the last session of this process the token logs
    /// it out. Operations after this open new sessions.
    pub fn close_sessions(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Whether the token still answers and this process is logged in to it.
    pub fn check(&self) -> Result<(), HsmError> {
        self.with_session(|s| {
            s.get_session_info().map_err(HsmError::from_ck)?;
            Ok(())
        })
    }

    /// The AES key labelled `label`, checked to be unable to leave the token.
    pub fn find_key(&self, label: &str) -> Result<TokenKey, HsmError> {
        if let Some(key) = self.known_key(label) {
            return Ok(key);
        }
        let key = self.with_session(|s| {
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Label(label.as_bytes().to_vec()),
            ];
            let found = s.find_objects(&template).map_err(HsmError::from_ck)?;
            let handle = *found
                .first()
                .ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
            let attributes = s
                .get_attributes(
                    handle,
                    &[AttributeType::Sensitive, AttributeType::Extractable],
                )
                .map_err(HsmError::from_ck)?;
            let sensitive = attributes
                .iter()
                .any(|a| matches!(a, Attribute::Sensitive(true)));
            let extractable = attributes
                .iter()
                .any(|a| matches!(a, Attribute::Extractable(true)));
            if !sensitive || extractable {
                return Err(HsmError::KeyExtractable(label.to_owned()));
            }
            Ok(TokenKey(handle))
        })?;
        self.remember(label, key);
        Ok(key)
    }

    fn known_key(&self, label: &str) -> Option<TokenKey> {
        self.keys.lock().ok()?.get(label).copied()
    }

    fn remember(&self, label: &str, key: TokenKey) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(label.to_owned(), key);
        }
    }

    /// Makes a persistent, sensitive, non-extractable AES-256 key labelled `label` inside the
    /// token, for encryption and decryption only.
    pub fn generate_key(&self, label: &str) -> Result<TokenKey, HsmError> {
        let key = self.with_session(|s| {
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Label(label.as_bytes().to_vec()),
            ];
            s.generate_key(&Mechanism::AesKeyGen, &template)
                .map(TokenKey)
                .map_err(HsmError::from_ck)
        })?;
        self.remember(label, key);
        Ok(key)
    }

    /// Random bytes from the token's generator.
    pub fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.with_session(|s| {
            let mut out = Zeroizing::new(vec![0u8; len]);
            s.generate_random_slice(&mut out)
                .map_err(HsmError::from_ck)?;
            Ok(out)
        })
    }

    /// Removes a key from the token for good.
    pub fn destroy_key(&self, key: TokenKey) -> Result<(), HsmError> {
        self.with_session(|s| s.destroy_object(key.0).map_err(HsmError::from_ck))?;
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, k| *k != key);
        }
        Ok(())
    }

    /// AES-256-GCM inside the token under `key`: ciphertext ‖ 16-byte tag. The caller
    /// supplies a fresh random `iv` for every call.
    pub fn seal(
        &self,
        key: TokenKey,
        iv: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.with_session(|s| {
            let mut iv = *iv;
            let params =
                GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(HsmError::from_ck)?;
            s.encrypt(&Mechanism::AesGcm(params), key.0, plaintext)
                .map_err(HsmError::from_ck)
        })
    }

    /// Opens what [`Token::seal`] made; `Unauthentic` if the tag does not verify.
    pub fn open_sealed(
        &self,
        key: TokenKey,
        iv: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.with_session(|s| {
            let mut iv = *iv;
            let params =
                GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(HsmError::from_ck)?;
            s.decrypt(&Mechanism::AesGcm(params), key.0, sealed)
                .map(Zeroizing::new)
                .map_err(|e| match e {
                    // SoftHSM2 reports a tag that does not verify as a general error.
                    CkError::Pkcs11(RvError::GeneralError, _) => HsmError::Unauthentic,
                    e => HsmError::from_ck(e),
                })
        })
    }
}
