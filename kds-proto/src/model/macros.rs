//! The `shape!` macro: one declaration per wire structure gives the Rust struct, its constructor
//! and its reading and writing in both codecs.

/// Declares a wire structure.
///
/// Required members are plain fields and constructor arguments; optional members are `Option`s
/// and start as `None`. An optional `fast: path;` names a function tried before the general
/// decoder (it returns `None`, having consumed nothing, for anything it does not handle). Decoding skips unknown members, treats `null` as absent, reports a
/// missing required member as `MissingField` and a member given twice as `Syntax`, naming it.
macro_rules! shape {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( fast: $fast:path; )?
            required {
                $( $(#[$rmeta:meta])* $r:ident : $rty:ty = $rwire:literal, )*
            }
            optional {
                $( $(#[$ometa:meta])* $o:ident : $oty:ty = $owire:literal, )*
            }
        }
    ) => {
        $(#[$meta])*
        #[non_exhaustive]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( $(#[$rmeta])* #[doc = concat!("\n\nWire member `", $rwire, "` (required).")] pub $r: $rty, )*
            $( $(#[$ometa])* #[doc = concat!("\n\nWire member `", $owire, "`.")] pub $o: Option<$oty>, )*
        }

        impl $name {
            #[doc = concat!("A `", stringify!($name), "` with its required members; the optional ones are `None`.")]
            #[allow(clippy::too_many_arguments, clippy::new_without_default)]
            pub fn new($($r: $rty),*) -> Self {
                Self {
                    $($r,)*
                    $($o: None,)*
                }
            }
        }

        impl $crate::model::Shape for $name {
            fn encode_body(&self, protocol: $crate::Protocol) -> Vec<u8> {
                $crate::codec::encode_document(self, protocol)
            }

            fn decode_body(body: bytes::Bytes, protocol: $crate::Protocol) -> Result<Self, $crate::DecodeError> {
                $crate::codec::decode_document(body, protocol)
            }
        }

        impl $crate::model::sealed::Sealed for $name {}

        #[cfg(test)]
        impl $crate::model::generate::Generate for $name {
            #[allow(unused_variables)]
            fn generate(rng: &mut $crate::model::generate::Rng) -> Self {
                Self {
                    $( $r: $crate::model::generate::Generate::generate(rng), )*
                    $( $o: if rng.chance() { Some($crate::model::generate::Generate::generate(rng)) } else { None }, )*
                }
            }
        }

        impl $crate::codec::Value for $name {
            #[allow(unused_variables, unused_mut)]
            fn decode<R: $crate::codec::Reader>(r: &mut R) -> Result<Self, $crate::DecodeError> {
                $( if let Some(value) = $fast(r) {
                    return Ok(value);
                } )?
                #[allow(non_camel_case_types)]
                #[derive(Clone, Copy)]
                enum Member { $($r,)* $($o,)* }
                const KEYS: &[(&str, Member)] = &[$(($rwire, Member::$r),)* $(($owire, Member::$o),)*];
                let start = r.offset();
                r.begin_map()?;
                $( let mut $r: Option<$rty> = None; )*
                $( let mut $o: Option<$oty> = None; )*
                while let Some(member) = r.next_key(KEYS)? {
                    match member {
                        $( Some(Member::$r) => {
                            if $r.is_some() {
                                return Err($crate::model::duplicate($rwire, r.offset()));
                            }
                            $r = $crate::model::decode_member(r, $rwire)?;
                        } )*
                        $( Some(Member::$o) => {
                            if $o.is_some() {
                                return Err($crate::model::duplicate($owire, r.offset()));
                            }
                            $o = $crate::model::decode_member(r, $owire)?;
                        } )*
                        None => r.skip_value()?,
                    }
                }
                Ok(Self {
                    $( $r: $r.ok_or_else(|| $crate::model::missing($rwire, start))?, )*
                    $( $o, )*
                })
            }

            #[allow(unused_variables)]
            fn encode<W: $crate::codec::Writer>(&self, w: &mut W) {
                let len = 0 $( + $crate::model::one(stringify!($r)) )* $( + usize::from(self.$o.is_some()) )*;
                w.begin_map(len);
                $(
                    w.key($rwire);
                    $crate::codec::Value::encode(&self.$r, w);
                )*
                $(
                    if let Some(value) = &self.$o {
                        w.key($owire);
                        $crate::codec::Value::encode(value, w);
                    }
                )*
                w.end_map();
            }
        }
    };
}

/// Declares a Kinesis operation on its input shape.
macro_rules! operation {
    ($input:ident => $output:ident, $name:literal, |$this:ident, $limits:ident| $validate:block) => {
        operation!($input => $output, $name, stream: |this| None, shard: |this| None, |$this, $limits| $validate);
    };
    (
        $input:ident => $output:ident, $name:literal,
        stream: |$s:ident| $stream:expr,
        shard: |$h:ident| $shard:expr,
        |$this:ident, $limits:ident| $validate:block
    ) => {
        impl $crate::model::Request for $input {
            type Response = $output;
            const OPERATION: &'static str = $name;
            const TARGET: &'static str = concat!("Kinesis_20131202.", $name);

            #[allow(unused_variables)]
            fn validate(
                &self,
                $limits: &$crate::model::Limits,
            ) -> Result<(), $crate::ValidationError> {
                let $this = self;
                $validate
            }

            #[allow(unused_variables)]
            fn stream(&self) -> Option<&str> {
                let $s = self;
                $stream
            }

            #[allow(unused_variables)]
            fn shard(&self) -> Option<&str> {
                let $h = self;
                $shard
            }
        }
    };
}
