# Dependencies of the tokenizers (src/text): ICU (NFC, Python's lowercase, character classes) and zlib (the
# gzip'd CLIP BPE vocabulary), linked PRIVATE into libclip through clip_text_deps, so consumers of the installed
# package need neither; libsentencepiece (Debian ships a pkg-config file only), linked only into the module
# libclip_sentencepiece.so that libclip opens privately (see src/text/sentencepiece_module.h).
find_package(ICU 60 REQUIRED COMPONENTS uc)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)

add_library(clip_text_deps INTERFACE)
target_link_libraries(clip_text_deps INTERFACE ICU::uc ZLIB::ZLIB)

# The CLIP BPE vocabulary: installed beside the configs (<prefix>/share/clip), and copied to the same place
# relative to the build tree's lib/ so that clip::default_clip_bpe_vocab() finds it the same way in both.
set(CLIP_BPE_VOCAB ${PROJECT_SOURCE_DIR}/third_party/clip_bpe/bpe_simple_vocab_16e6.txt.gz)
configure_file(${CLIP_BPE_VOCAB} ${PROJECT_BINARY_DIR}/share/clip/bpe_simple_vocab_16e6.txt.gz COPYONLY)
install(FILES ${CLIP_BPE_VOCAB} ${PROJECT_SOURCE_DIR}/third_party/clip_bpe/LICENSE.openai-clip
        DESTINATION ${CMAKE_INSTALL_DATADIR}/clip)
